package main

import (
	"bytes"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	"lode/internal/sqlitedb"
)

// TestVersionCmd: lode version names Lode's version, Go's, and the
// bundled SQLite's with whether FTS5 is in, as its help promises.
func TestVersionCmd(t *testing.T) {
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetArgs([]string{"version"})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	lib, err := sqlitedb.LibraryInfo()
	if err != nil {
		t.Fatal(err)
	}
	fts := "FTS5 compiled in"
	if !lib.FTS5 {
		fts = "no FTS5"
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "lode ") ||
		lines[1] != "go "+runtime.Version()+" "+runtime.GOOS+"/"+runtime.GOARCH ||
		!strings.HasPrefix(lines[2], "sqlite "+lib.Version+", "+fts) {
		t.Errorf("lode version printed:\n%s\nwant lode ..., go %s, sqlite %s, %s", out.String(), runtime.Version(), lib.Version, fts)
	}
}

func TestFormatVersion(t *testing.T) {
	for _, tc := range []struct {
		version string
		vcs     map[string]string
		want    string
	}{
		{"v1.2.3", nil, "v1.2.3"},
		{"", nil, "(devel)"},
		{"(devel)", map[string]string{"vcs.revision": "0123456789abcdef0123", "vcs.time": "2026-12-04T17:27:31Z", "vcs.modified": "true"},
			"(devel) commit 0123456789ab (2026-12-04T17:27:31Z, with uncommitted changes)"},
		{"(devel)", map[string]string{"vcs.revision": "0123456789abcdef0123", "vcs.modified": "false"}, "(devel) commit 0123456789ab"},
		// A pseudo-version already names the commit (Go 1.24+ builds in a clone).
		{"v0.0.0-20261204172731-0123456789ab+dirty", map[string]string{"vcs.revision": "0123456789abcdef0123", "vcs.modified": "true"},
			"v0.0.0-20261204172731-0123456789ab+dirty"},
	} {
		bi := &debug.BuildInfo{Main: debug.Module{Version: tc.version}}
		for k, v := range tc.vcs {
			bi.Settings = append(bi.Settings, debug.BuildSetting{Key: k, Value: v})
		}
		if got := formatVersion(bi); got != tc.want {
			t.Errorf("formatVersion(%q, %v) = %q; want %q", tc.version, tc.vcs, got, tc.want)
		}
	}
}
