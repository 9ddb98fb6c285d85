BEGIN;
CREATE TABLE ok (id bigint PRIMARY KEY);
CREATE TABEL broken (id int);
COMMIT;
