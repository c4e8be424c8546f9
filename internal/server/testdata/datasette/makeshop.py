#!/usr/bin/env python3
"""Generate shop.db for the differential probe (deterministic)."""
import json, random, sqlite3, sys, os
path = sys.argv[1] if len(sys.argv) > 1 else "shop.db"
if os.path.exists(path):
    os.remove(path)
rnd = random.Random(42)
db = sqlite3.connect(path)
c = db.cursor()
c.executescript("""
CREATE TABLE customers (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  email TEXT,
  country TEXT,
  created TEXT,
  balance REAL,
  is_vip INTEGER,
  "first name" TEXT,
  "a.b" TEXT,
  "quote""d" TEXT,
  big INTEGER
);
CREATE TABLE products (
  sku TEXT PRIMARY KEY,
  title TEXT,
  price REAL,
  tags TEXT,
  description TEXT,
  in_stock INTEGER
);
CREATE TABLE orders (
  id INTEGER PRIMARY KEY,
  customer_id INTEGER REFERENCES customers(id),
  status TEXT,
  total REAL,
  placed TEXT
);
CREATE TABLE order_items (
  order_id INTEGER REFERENCES orders(id),
  line INTEGER,
  product_id TEXT REFERENCES products(sku),
  qty INTEGER,
  PRIMARY KEY (order_id, line)
);
CREATE TABLE events (kind TEXT, payload TEXT, at TEXT);
CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT) WITHOUT ROWID;
CREATE TABLE "ventes 2024 – été" (id INTEGER PRIMARY KEY, "région" TEXT, montant REAL, customer_id INTEGER REFERENCES customers(id));
CREATE INDEX idx_orders_status ON orders(status);
CREATE INDEX idx_customers_country ON customers(country, created);
CREATE VIEW order_summary AS
  SELECT orders.id AS order_id, customers.name AS customer, orders.status, orders.total, orders.placed
  FROM orders JOIN customers ON customers.id = orders.customer_id;
CREATE VIRTUAL TABLE products_fts USING fts5(title, description, content='products', content_rowid='rowid');
CREATE VIRTUAL TABLE customers_fts USING fts4(name, email, content="customers");
""")
countries = ["FR", "DE", "US", "GB", "ES", None, "", "IT"]
first = ["Anne", "Bruno", "Chloé", "David", "Émile", "Fatima", "Gus", "Hélène", "Ivan", "Jo"]
last = ["Martin", "Bernard", "Dubois", "Thomas", "Robert", "O'Neil", "Smith", "Müller"]
for i in range(1, 301):
    fn = rnd.choice(first); ln = rnd.choice(last)
    email = None if i % 13 == 0 else ("" if i % 17 == 0 else f"{fn.lower()}.{i}@example.{rnd.choice(['com','fr','de'])}")
    created = f"2023-{rnd.randint(1,12):02d}-{rnd.randint(1,28):02d}" + (f" {rnd.randint(0,23):02d}:{rnd.randint(0,59):02d}:00" if i % 3 == 0 else "")
    if i % 11 == 0:
        created = None
    bal = None if i % 7 == 0 else round(rnd.uniform(-500, 2000), 2)
    if i % 50 == 0:
        bal = 0.0
    big = 9007199254740993 + i if i % 25 == 0 else (i if i % 2 else None)
    c.execute("INSERT INTO customers VALUES (?,?,?,?,?,?,?,?,?,?,?)",
              (i, f"{fn} {ln}", email, countries[i % len(countries)], created, bal,
               1 if i % 5 == 0 else 0, fn, f"ab{i%4}" if i % 6 else None, f'q"{i%3}', big))
tagpool = ["red", "blue", "green", "sale", "new", "eco", "x,y", "ümlaut"]
words = ["fast", "durable", "cheap", "organic", "cotton", "steel", "wireless", "portable", "vintage", "classic"]
for i in range(1, 121):
    sku = f"SKU-{i:04d}" if i % 10 else f"sku/{i}.x"
    tags = json.dumps(rnd.sample(tagpool, rnd.randint(0, 3))) if i % 9 else (None if i % 2 else "[]")
    title = f"{rnd.choice(words).title()} {rnd.choice(['Shirt','Lamp','Chair','Mug','Bike','Radio'])} {i}"
    desc = " ".join(rnd.choice(words) for _ in range(6)) if i % 8 else None
    price = None if i % 15 == 0 else round(rnd.uniform(1, 300), 2)
    c.execute("INSERT INTO products VALUES (?,?,?,?,?,?)", (sku, title, price, tags, desc, i % 2))
skus = [r[0] for r in c.execute("select sku from products")]
statuses = ["new", "paid", "shipped", "cancelled", "refunded", None]
for i in range(1, 501):
    cust = rnd.randint(1, 300) if i % 20 else None
    placed = f"2024-{rnd.randint(1,6):02d}-{rnd.randint(1,28):02d}T{rnd.randint(0,23):02d}:{rnd.randint(0,59):02d}:00"
    c.execute("INSERT INTO orders VALUES (?,?,?,?,?)", (i, cust, statuses[i % 6], round(rnd.uniform(5, 900), 2) if i % 19 else None, placed))
n = 0
for o in range(1, 201):
    for line in range(1, rnd.randint(1, 4) + 1):
        c.execute("INSERT INTO order_items VALUES (?,?,?,?)", (o, line, rnd.choice(skus), rnd.randint(1, 5)))
kinds = ["login", "logout", "view", "buy"]
for i in range(1, 151):
    c.execute("INSERT INTO events VALUES (?,?,?)", (kinds[i % 4], json.dumps({"n": i}), f"2024-02-{(i%28)+1:02d} 10:00:00"))
for i in range(1, 61):
    c.execute("INSERT INTO kv VALUES (?,?)", (f"key{i:03d}", None if i % 10 == 0 else f"value {i}"))
regions = ["Île-de-France", "Bretagne", "Provence", "Alsace"]
for i in range(1, 81):
    c.execute('INSERT INTO "ventes 2024 – été" VALUES (?,?,?,?)', (i, regions[i % 4], round(rnd.uniform(-50, 500), 2), rnd.randint(1, 300)))
c.execute("INSERT INTO products_fts(products_fts) VALUES('rebuild')")
c.execute("INSERT INTO customers_fts(customers_fts) VALUES('rebuild')")

c.executescript("""
CREATE TABLE notes (id INTEGER PRIMARY KEY, title TEXT, body TEXT);
CREATE VIRTUAL TABLE notes_fts USING fts5(title, body, content="notes", content_rowid="id");
CREATE TABLE stores (id INTEGER PRIMARY KEY, code TEXT UNIQUE, name TEXT);
CREATE TABLE brands (id INTEGER PRIMARY KEY, slug TEXT UNIQUE, ref TEXT UNIQUE, name TEXT);
CREATE TABLE visits (id INTEGER PRIMARY KEY, store_id INTEGER REFERENCES stores(id), brand_id INTEGER REFERENCES brands(id), n INTEGER);
""")
for i in range(1, 41):
    c.execute("INSERT INTO notes VALUES (?,?,?)", (i, f"Note {i} " + rnd.choice(words), " ".join(rnd.choice(words) for _ in range(5)) if i % 7 else ""))
c.execute("INSERT INTO notes_fts(notes_fts) VALUES('rebuild')")
for i in range(1, 6):
    c.execute("INSERT INTO stores VALUES (?,?,?)", (i, f"ST{i}", f"Store number {i}"))
    c.execute("INSERT INTO brands VALUES (?,?,?,?)", (i, f"brand-{i}", f"R{i}", f"Brand {i}"))
for i in range(1, 31):
    c.execute("INSERT INTO visits VALUES (?,?,?,?)", (i, (i % 5) + 1, (i % 3) + 1, i * 2))
db.commit()
db.close()
