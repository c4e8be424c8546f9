#!/usr/bin/env python3
"""Build the multi setup's databases (alpha.db, my-data.db, x.y.db, "sp ace.db")
in the folder given (default: multi/ next to this script), for the canned-query
and multi-database probe; served with multi/datasette.yaml."""
import os, sqlite3, sys
OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "multi")
os.makedirs(OUT, exist_ok=True)
for f in os.listdir(OUT):
    if f.endswith(".db"): os.remove(os.path.join(OUT, f))
def mk(name, script):
    c = sqlite3.connect(os.path.join(OUT, name)); c.executescript(script); c.commit(); c.close()
mk('alpha.db', """
create table t (id integer primary key, x text, n integer, j text);
insert into t (x, n, j) values ('a', 1, '{"k": 1}'), ('b', 2, '[1,2]'), ('a', 3, 'notjson'), (null, 4, null), ('c d', 5, '"s"');
create table log (id integer primary key, msg text not null unique, created text);
insert into log (msg) values ('first');
create table samename (id integer primary key, v text);
insert into samename (v) values ('table-row');
create table "sp ace" (k text primary key, v integer);
insert into "sp ace" values ('x', 1), ('y', 2);
create view v_t as select id, x from t where n > 1;
create virtual table docs_fts using fts5(title, body);
insert into docs_fts values ('hello', 'world'), ('dog', 'cat');
create table nums (a integer, b real, c blob);
insert into nums values (1, 1.5, x'00ff'), (2, null, 'text');
create table _underscore (id integer primary key, v text);
insert into _underscore (v) values ('u');
create virtual table notes_fts4 using fts4(body);
insert into notes_fts4 values ('alpha beta');
create table anyt (id integer primary key, v);
""")
mk('my-data.db', """
create table items (id integer primary key, name text, price real);
insert into items (name, price) values ('apple', 1.25), ('pear', 2.0), ('fig', null);
create view cheap as select * from items where price < 2;
""")
mk('x.y.db', """
create table "a.b" (id integer primary key, val text);
insert into "a.b" (val) values ('one'), ('two');
create table plain (id integer primary key, val text);
insert into plain (val) values ('p');
""")
mk('sp ace.db', """
create table z (id integer primary key);
insert into z values (1);
""")
