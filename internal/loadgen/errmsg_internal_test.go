package loadgen

import "testing"

func TestBodyMessage(t *testing.T) {
	for _, tt := range []struct{ body, want string }{
		{``, ``},
		{`{"ok":false,"error":"database is locked","status":503,"code":"SQLITE_BUSY_SNAPSHOT"}`, `database is locked (SQLITE_BUSY_SNAPSHOT)`},
		{`{"error":{"kind":"x"}}`, `{"kind":"x"}`},
		{`{"detail":"Not found."}`, `Not found.`},
		{`{"message":"too many requests"}`, `too many requests`},
		{`{"ok":false}`, ``},
		{`{broken json`, `{broken json`},
		{"<html><head><title>502 Bad   Gateway</title></head></html>", `502 Bad Gateway`},
		{"<html><body><h1>Service &amp; more</h1></body></html>", `Service & more`},
		{"<p>plain <b>fragment</b></p>\n<p>second</p>", `plain fragment second`},
		// A generic page whose body names the lock still counts as one.
		{"<html><title>Internal Server Error</title><pre>OperationalError: database is locked</pre></html>", `Internal Server Error (database is locked)`},
		{"Error: SQLITE_BUSY: database is busy", `Error: SQLITE_BUSY: database is busy`},
		{"upstream timed out\nmore detail", `upstream timed out`},
		{"ValueError: bad id", `ValueError: bad id`},
		{"psycopg2.errors.SerializationFailure: could not serialize access", `SerializationFailure: could not serialize access`},
		{"KeyError", `KeyError`},
		{"Traceback (most recent call last):\n  File \"x.py\", line 1, in <module>\nsqlite3.OperationalError: database is locked\n", `OperationalError: database is locked`},
	} {
		if got := bodyMessage([]byte(tt.body)); got != tt.want {
			t.Errorf("bodyMessage(%q) = %q; want %q", tt.body, got, tt.want)
		}
	}
}
