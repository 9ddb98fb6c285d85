BEGIN;
--
-- Add field isbn to book
--
ALTER TABLE "library_book" ADD COLUMN "isbn" varchar(13) DEFAULT '' NOT NULL;
ALTER TABLE "library_book" ALTER COLUMN "isbn" DROP DEFAULT;
--
-- Add field pages to book
--
ALTER TABLE "library_book" ADD COLUMN "pages" integer NULL;
--
-- Alter field name on author
--
CREATE INDEX "library_author_name_4e1a2b3c" ON "library_author" ("name");
CREATE INDEX "library_author_name_4e1a2b3c_like" ON "library_author" ("name" varchar_pattern_ops);
--
-- Rename field born on author to birth_date
--
ALTER TABLE "library_author" RENAME COLUMN "born" TO "birth_date";
--
-- Add field editor to book
--
ALTER TABLE "library_book" ADD COLUMN "editor_id" bigint NULL CONSTRAINT "library_book_editor_id_7f3e9a1b_fk_library_author_id" REFERENCES "library_author"("id") DEFERRABLE INITIALLY DEFERRED; SET CONSTRAINTS "library_book_editor_id_7f3e9a1b_fk_library_author_id" IMMEDIATE;
COMMIT;
