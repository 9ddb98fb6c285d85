BEGIN;

CREATE TABLE alembic_version (
    version_num VARCHAR(32) NOT NULL, 
    CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)
);

-- Running upgrade  -> 3f2a1c9d8e7b

CREATE TABLE users (
    id BIGSERIAL NOT NULL, 
    email VARCHAR(255) NOT NULL, 
    name TEXT, 
    created_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL, 
    PRIMARY KEY (id), 
    UNIQUE (email)
);

CREATE TABLE posts (
    id BIGSERIAL NOT NULL, 
    user_id BIGINT NOT NULL, 
    title TEXT NOT NULL, 
    body TEXT, 
    PRIMARY KEY (id), 
    FOREIGN KEY(user_id) REFERENCES users (id) ON DELETE CASCADE
);

INSERT INTO alembic_version (version_num) VALUES ('3f2a1c9d8e7b') RETURNING alembic_version.version_num;

COMMIT;
