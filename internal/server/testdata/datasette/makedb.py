#!/usr/bin/env python3
"""Build edge.db, the second database of Lode's Datasette recordings.

    python3 makedb.py edge.db

It holds what fixtures.db lacks: names with / . % ~ space and non-ASCII,
keys of other kinds (text, compound, rowid, blob), NULL-heavy sort columns,
views long enough to page, FTS4 and FTS5 indexes, a many-to-many join for
_through, blobs that are and are not UTF-8, JSON arrays for array facets,
dates for date facets. Deterministic: the same file every time.
"""
import sqlite3
import sys

path = sys.argv[1] if len(sys.argv) > 1 else "edge.db"
db = sqlite3.connect(path)
db.executescript("""
PRAGMA journal_mode = delete;
CREATE TABLE categories (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE items (
    id INTEGER PRIMARY KEY,
    name TEXT,
    score REAL,
    rank INTEGER,
    tags TEXT,
    created TEXT,
    category_id INTEGER REFERENCES categories(id),
    note TEXT
);
CREATE TABLE tags (id INTEGER PRIMARY KEY, tag TEXT);
CREATE TABLE item_tags (
    item_id INTEGER REFERENCES items(id),
    tag_id INTEGER REFERENCES tags(id),
    PRIMARY KEY (item_id, tag_id)
);
CREATE TABLE text_keys (code TEXT PRIMARY KEY, label TEXT);
CREATE TABLE compound (a TEXT, b INTEGER, v TEXT, PRIMARY KEY (a, b));
CREATE TABLE no_pk (name TEXT, size INTEGER);
CREATE TABLE blobs (id INTEGER PRIMARY KEY, data BLOB, kind TEXT);
CREATE TABLE articles (id INTEGER PRIMARY KEY, title TEXT, body TEXT, author TEXT);
CREATE VIRTUAL TABLE articles_fts USING fts4 (title, body, content="articles");
CREATE TABLE notes (id INTEGER PRIMARY KEY, heading TEXT, text TEXT);
CREATE VIRTUAL TABLE notes_fts USING fts5 (heading, text, content="notes", content_rowid="id");
CREATE TABLE "secret/x" (id INTEGER PRIMARY KEY, v TEXT);
CREATE TABLE "s.json" (id INTEGER PRIMARY KEY, v TEXT);
CREATE TABLE "a.b" (id INTEGER PRIMARY KEY, v TEXT);
CREATE TABLE "x~y" (id INTEGER PRIMARY KEY, v TEXT);
CREATE TABLE "ü space" (id INTEGER PRIMARY KEY, "ö col" TEXT);
CREATE TABLE "%2F" (id INTEGER PRIMARY KEY, v TEXT);
CREATE TABLE "100%" (id INTEGER PRIMARY KEY, v TEXT);
CREATE VIEW items_view AS SELECT id, name, score, category_id FROM items;
CREATE VIEW small_view AS SELECT code, label FROM text_keys;
""")
cats = ["Books", "Games", "Tools", "Toys"]
db.executemany("INSERT INTO categories VALUES (?, ?)", [(i + 1, c) for i, c in enumerate(cats)])
tagnames = ["red", "green", "blue", "big", "small"]
db.executemany("INSERT INTO tags VALUES (?, ?)", [(i + 1, t) for i, t in enumerate(tagnames)])
rows = []
for i in range(1, 251):
    score = None if i % 3 == 0 else round((i * 37 % 101) / 7, 3)
    rank = None if i % 4 == 0 else i % 9
    tags = '["%s", "%s"]' % (tagnames[i % 5], tagnames[(i * 3) % 5]) if i % 2 else "[]"
    created = "2024-%02d-%02d 12:%02d:00" % (i % 12 + 1, i % 28 + 1, i % 60)
    cat = None if i % 10 == 0 else i % 4 + 1
    note = None if i % 5 == 0 else ("" if i % 7 == 0 else "note %d" % i)
    rows.append((i, "item %03d" % i, score, rank, tags, created, cat, note))
db.executemany("INSERT INTO items VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
db.executemany("INSERT INTO item_tags VALUES (?, ?)", [(i, i % 5 + 1) for i in range(1, 251, 2)] + [(i, (i + 2) % 5 + 1) for i in range(1, 251, 3)])
codes = ["a/b", "c.d", "e~f", "g h", "ü", "%2F", "x,y", "plain", "-dash", "_under", "1.5", "NULL"]
db.executemany("INSERT INTO text_keys VALUES (?, ?)", [(c, "label of " + c) for c in codes])
db.executemany("INSERT INTO compound VALUES (?, ?, ?)", [(a, b, "%s-%d" % (a, b)) for a in ["x", "y/z", "a,b", "ü"] for b in [1, 2, 10]])
db.executemany("INSERT INTO no_pk VALUES (?, ?)", [("n%d" % i, None if i % 2 else i) for i in range(1, 131)])
db.executemany("INSERT INTO blobs VALUES (?, ?, ?)", [
    (1, b"hello utf-8", "text"),
    (2, "ünïcode".encode("utf-8"), "text"),
    (3, b"\x00\x01\xff\xfe", "binary"),
    (4, b"", "empty"),
    (5, None, "null"),
])
arts = [
    (1, "Dogs of the city", "A story about dogs and cats", "ann"),
    (2, "Cat tales", "Cats only, no dogs", "bob"),
    (3, "The fox", "Quick brown fox jumps over the lazy dog", "ann"),
    (4, "Birds", "Nothing about mammals", "cy"),
]
db.executemany("INSERT INTO articles VALUES (?, ?, ?, ?)", arts)
db.execute("INSERT INTO articles_fts (rowid, title, body) SELECT id, title, body FROM articles")
notes = [(1, "Shopping", "buy milk and bread"), (2, "Work", "finish the report"), (3, "Bread", "bake sourdough bread"), (4, "Misc", "dog walking at noon")]
db.executemany("INSERT INTO notes VALUES (?, ?, ?)", notes)
db.execute("INSERT INTO notes_fts (rowid, heading, text) SELECT id, heading, text FROM notes")
for t in ["secret/x", "s.json", "a.b", "x~y", "%2F", "100%"]:
    db.executemany('INSERT INTO "%s" VALUES (?, ?)' % t.replace('"', '""'), [(1, "one in " + t), (2, "two in " + t)])
db.executemany('INSERT INTO "ü space" VALUES (?, ?)', [(1, "eins"), (2, "zwei")])
db.commit()
db.execute("VACUUM")
db.close()
