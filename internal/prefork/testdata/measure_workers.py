#!/usr/bin/env python3
"""Interleaved measurement of lode serve --workers 0,1,2,4 (+ --reuse-port 2,4).

All six servers run at once (idle ones cost nothing but heartbeats); ROUNDS times, in a
shuffled order, each config gets DUR of `lode load -c C` per workload (table page, row page,
insert). Reports the median req/s per cell, so background load on the shared machine hits
every config alike.

Usage (needs sqlite3 and Datasette's fixtures.db):
  go build -tags sqlite_fts5 -o /tmp/lode ./cmd/lode
  LODE=/tmp/lode FIXTURES=/path/to/fixtures.db ROUNDS=5 DUR=3s WARM=1s C=32 \
      python3 internal/prefork/testdata/measure_workers.py
"""
import json, os, random, re, shutil, signal, statistics, subprocess, sys, time, urllib.request

LODE = os.environ.get("LODE", "lode")
ROUNDS = int(os.environ.get("ROUNDS", "5"))
DUR = os.environ.get("DUR", "3s")
WARM = os.environ.get("WARM", "1s")
C = os.environ.get("C", "32")
SECRET = "measure-secret-0123456789abcdef"
base = os.environ.get("OUT", "/tmp/lode-measure-workers")
shutil.rmtree(base, ignore_errors=True)
os.makedirs(base)
token = subprocess.check_output([LODE, "token", "create", "--actor", "root", "--secret", SECRET], text=True).strip()
configs = [("0", []), ("1", []), ("2", []), ("4", []), ("2", ["--reuse-port"]), ("4", ["--reuse-port"])]
servers = []
for i, (n, extra) in enumerate(configs):
    d = f"{base}/c{i}"
    os.makedirs(d)
    shutil.copy(os.environ.get("FIXTURES", "fixtures.db"), f"{d}/fixtures.db")
    subprocess.check_call(["sqlite3", f"{d}/bench.db", "create table events (id integer primary key, body text); pragma journal_mode=wal;"], stdout=subprocess.DEVNULL)
    err = open(f"{d}/err.txt", "w")
    p = subprocess.Popen([LODE, "serve", f"{d}/fixtures.db", f"{d}/bench.db", "--port", "0", "--workers", n, *extra,
                          "--root", "--secret", SECRET], stdout=subprocess.DEVNULL, stderr=err)
    url = None
    for _ in range(300):
        m = re.search(r"url=(http://\S+/)", open(f"{d}/err.txt").read())
        if m:
            url = m.group(1); break
        time.sleep(0.1)
    want = max(1, int(n))
    for _ in range(300):
        try:
            st = json.load(urllib.request.urlopen(url + "-/workers.json"))
            if sum(w["state"] in ("idle", "busy") for w in st["workers"]) == want and len(st["workers"]) == want:
                break
        except Exception:
            pass
        time.sleep(0.1)
    name = f"workers={n}" + (" reuse-port" if extra else "")
    servers.append((name, url, p, d))

workloads = [
    ("table", lambda u: [u + "fixtures/facetable.json?_size=10"]),
    ("row", lambda u: [u + "fixtures/facetable/1.json"]),
    ("insert", lambda u: [u + "bench/events/-/insert", "-m", "POST", "-H", "Authorization: Bearer " + token,
                          "-H", "Content-Type: application/json", "--body", '{"row": {"body": "hello"}}']),
]
res = {(s[0], w[0]): [] for s in servers for w in workloads}
fails = {(s[0], w[0]): 0 for s in servers for w in workloads}
for r in range(ROUNDS):
    order = servers[:]
    random.shuffle(order)
    for name, url, p, d in order:
        for wname, args in workloads:
            out = f"{d}/{wname}-{r}.json"
            subprocess.run([LODE, "load", *args(url), "-c", C, "-d", DUR, "--warmup", WARM, "-q", "--json", out],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                t = json.load(open(out))["total"]
                res[(name, wname)].append(t["rps"])
                fails[(name, wname)] += t["failures"]
            except Exception as e:
                print("no result", name, wname, e, file=sys.stderr)
    print(f"round {r+1}/{ROUNDS} done", file=sys.stderr, flush=True)
for name, url, p, d in servers:
    p.send_signal(signal.SIGTERM)
for name, url, p, d in servers:
    p.wait(timeout=60)
print(f"median req/s over {ROUNDS} interleaved rounds of {DUR} (lode load -c {C}, warm-up {WARM}); min-max in brackets")
print(f"{'config':24} {'table page':>22} {'row page':>22} {'insert':>22}")
for name, *_ in servers:
    cells = []
    for wname, _ in workloads:
        v = res[(name, wname)]
        if not v:
            cells.append("n/a"); continue
        c = f"{statistics.median(v):.0f} [{min(v):.0f}-{max(v):.0f}]"
        if fails[(name, wname)]:
            c += f" {fails[(name, wname)]}f"
        cells.append(c)
    print(f"{name:24} {cells[0]:>22} {cells[1]:>22} {cells[2]:>22}")
