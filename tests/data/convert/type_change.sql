-- a hand-written change: the type of a column and its NULLs
ALTER TABLE users ALTER COLUMN name TYPE varchar(80);
ALTER TABLE users ALTER COLUMN bio DROP NOT NULL;
