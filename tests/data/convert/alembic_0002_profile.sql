BEGIN;

-- Running upgrade 3f2a1c9d8e7b -> 9b1e4d2c7a60

ALTER TABLE users ADD COLUMN bio TEXT;

ALTER TABLE users ADD COLUMN is_active BOOLEAN DEFAULT true NOT NULL;

CREATE INDEX ix_posts_user_id ON posts (user_id);

ALTER TABLE posts RENAME COLUMN body TO content;

ALTER TABLE users ADD CONSTRAINT ck_users_email_at CHECK (position('@' in email) > 1);

UPDATE alembic_version SET version_num='9b1e4d2c7a60' WHERE alembic_version.version_num = '3f2a1c9d8e7b';

COMMIT;
