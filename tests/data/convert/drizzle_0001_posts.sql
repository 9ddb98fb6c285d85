ALTER TABLE "posts" ADD COLUMN "published" boolean DEFAULT false NOT NULL;
--> statement-breakpoint
ALTER TABLE "posts" ALTER COLUMN "title" SET DEFAULT 'untitled';
--> statement-breakpoint
DROP INDEX IF EXISTS "name_idx";
--> statement-breakpoint
CREATE UNIQUE INDEX IF NOT EXISTS "posts_title_author_idx" ON "posts" USING btree ("author_id","title") WHERE "published" = true;
--> statement-breakpoint
ALTER TABLE "users" DROP COLUMN IF EXISTS "email";
--> statement-breakpoint
CREATE TYPE "public"."role" AS ENUM('admin', 'member');
