#!/usr/bin/env python3
"""Record the answers of a running server to the write requests of
cases.jsonl, in order (stdlib only).

Usage:
    python3 record_writes.py BASE_URL TOKEN [CASES] [OUT]

BASE_URL serves a fresh copy of the database built from schema.sql as
database "wd" (`sqlite3 wd.db < schema.sql`), with writes allowed for the
actor of TOKEN (Datasette: `datasette serve wd.db --root --secret S` and
`datasette create-token root --secret S`). Each case is a JSON object:
method, path, body (the raw request body, or null), ctype (Content-Type,
or null) and auth (send "Authorization: Bearer TOKEN"). Each output line
adds base, status, content_type and response (the response text).
"""
import json
import os
import sys
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    base, token = sys.argv[1].rstrip("/"), sys.argv[2]
    cases = sys.argv[3] if len(sys.argv) > 3 else os.path.join(HERE, "cases.jsonl")
    out = sys.argv[4] if len(sys.argv) > 4 else os.path.join(HERE, "writes-1.0a34.jsonl")
    with open(cases) as f, open(out, "w") as w:
        for line in f:
            if not line.strip():
                continue
            c = json.loads(line)
            data = c["body"].encode() if c.get("body") is not None else None
            if data is None and c["method"] == "POST":
                data = b""
            req = urllib.request.Request(base + c["path"], data=data, method=c["method"])
            if c.get("ctype"):
                req.add_header("Content-Type", c["ctype"])
            if c.get("auth"):
                req.add_header("Authorization", "Bearer " + token)
            try:
                with urllib.request.urlopen(req) as resp:
                    status, ctype, body = resp.status, resp.headers.get("content-type", ""), resp.read()
            except urllib.error.HTTPError as e:
                status, ctype, body = e.code, e.headers.get("content-type", ""), e.read()
            c.update(base=base, status=status, content_type=ctype, response=body.decode("utf-8", "replace"))
            w.write(json.dumps(c, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
