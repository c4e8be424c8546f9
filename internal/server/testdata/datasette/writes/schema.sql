-- The database both servers start from for the write recordings.
CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, qty INTEGER DEFAULT 0, price REAL, note TEXT);
INSERT INTO items (name, qty, price) VALUES ('a', 1, 1.5), ('b', 2, 2.5), ('c', 3, NULL);
CREATE TABLE tags (tag TEXT PRIMARY KEY, n INTEGER);
INSERT INTO tags VALUES ('x', 1), ('y', 2);
CREATE TABLE pairs (a INTEGER, b TEXT, v TEXT, PRIMARY KEY (a, b));
INSERT INTO pairs VALUES (1, 'p', 'one'), (2, 'q', 'two');
CREATE TABLE norow (v TEXT);
INSERT INTO norow VALUES ('r1'), ('r2'), ('r3');
-- Tables for the differences Lode keeps: nothing reads them afterwards
-- except their own final state.
CREATE TABLE alt (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE batch (id INTEGER PRIMARY KEY, name TEXT, qty INTEGER DEFAULT 0);
CREATE TABLE ups (id INTEGER PRIMARY KEY, name TEXT NOT NULL, qty INTEGER);
INSERT INTO ups VALUES (1, 'u1', 1);
CREATE TABLE dup (id INTEGER PRIMARY KEY, name TEXT);
INSERT INTO dup VALUES (1, 'd1');
CREATE VIEW v_items AS SELECT * FROM items;
