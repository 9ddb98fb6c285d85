-- Two version schemas over one table, for the transaction-mode tests:
-- v1 sees items(id, name), v2 sees items(id, title).
CREATE SCHEMA v1;
CREATE SCHEMA v2;
CREATE TABLE public.items (id int PRIMARY KEY, v1_name text, v2_title text);
INSERT INTO public.items SELECT g, 'n' || g, 't' || g FROM generate_series(1, 100) g;
CREATE VIEW v1.items AS SELECT id, v1_name AS name FROM public.items;
CREATE VIEW v2.items AS SELECT id, v2_title AS title FROM public.items;
