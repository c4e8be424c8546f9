package bench

import (
	"strings"
	"testing"
)

func TestSplitCommand(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want []string
	}{
		{"a b  c", []string{"a", "b", "c"}},
		{`gunicorn -b '127.0.0.1:{port}' "studyapp.wsgi"`, []string{"gunicorn", "-b", "127.0.0.1:{port}", "studyapp.wsgi"}},
		{`python3 -c "import django, gunicorn"`, []string{"python3", "-c", "import django, gunicorn"}},
		{`sh -c 'echo "$HOME" && exit 1'`, []string{"sh", "-c", `echo "$HOME" && exit 1`}},
		{`x "a \"quoted\" \$word \n"`, []string{"x", `a "quoted" $word \n`}},
		{`x a\ b ''`, []string{"x", "a b", ""}},
		{"x \\\n y", []string{"x", "y"}},
		{"", nil},
	} {
		got, err := splitCommand(tt.in)
		if err != nil || strings.Join(got, "|") != strings.Join(tt.want, "|") || len(got) != len(tt.want) {
			t.Errorf("splitCommand(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{`x 'open`, `x "open`, `x \`} {
		if _, err := splitCommand(bad); err == nil {
			t.Errorf("splitCommand(%q) succeeded; want an error", bad)
		}
	}
}

func TestExpandPlaceholders(t *testing.T) {
	vals := cellValues(Cell{Workers: "4", JournalMode: "wal"}, "/w/a b/db.sqlite3", "/w/a b", 8123)
	got := expandArgs([]string{"--db={db}", "{workers}", "{busy_timeout_ms}", "{unknown}"}, vals)
	want := []string{"--db=/w/a b/db.sqlite3", "4", "", "{unknown}"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("expandArgs = %q; want %q (an unset busy timeout is empty, not 0)", got, want)
	}
	vals = cellValues(Cell{BusyTimeout: "5s"}, "", "", 1)
	if vals["busy_timeout_ms"] != "5000" {
		t.Errorf("busy_timeout_ms = %q; want 5000", vals["busy_timeout_ms"])
	}
}
