package server_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"lode/internal/server"
	"lode/internal/sqlitedb"
	"lode/internal/sqlitetest"
)

// openLogged runs server.New on cfg with a text logger and returns what it
// logged.
func openLogged(t *testing.T, cfg server.Config) string {
	t.Helper()
	var out logBuffer
	cfg.Logger = slog.New(slog.NewTextHandler(&out, nil))
	s, err := server.New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

// TestJournalModeChangeLogged: serving a rollback-journal file switches it
// to WAL, which SQLite keeps in the file; the server says so once, in one
// line naming both modes and the way to avoid it. The next start finds
// WAL and says nothing; --journal-mode keep leaves a file alone.
func TestJournalModeChangeLogged(t *testing.T) {
	path := sqlitetest.WriteFixtures(t, t.TempDir())
	const msg = "journal mode changed (persistent; --journal-mode keep leaves it)"

	kept := openLogged(t, server.Config{Files: []string{path}, DB: sqlitedb.Settings{JournalMode: "keep"}})
	if strings.Contains(kept, "journal mode changed") || !strings.Contains(kept, "journal_mode=delete") {
		t.Errorf("--journal-mode keep changed the file or said it did:\n%s", kept)
	}

	first := openLogged(t, server.Config{Files: []string{path}})
	want := `msg="` + msg + `" db=fixtures file=fixtures.db from=delete to=wal`
	if !strings.Contains(first, want) {
		t.Errorf("first start's log lacks %q:\n%s", want, first)
	}
	if again := openLogged(t, server.Config{Files: []string{path}}); strings.Contains(again, "journal mode changed") {
		t.Errorf("a file already in WAL mode was reported as changed:\n%s", again)
	}
	back := openLogged(t, server.Config{Files: []string{path}, DB: sqlitedb.Settings{JournalMode: "delete"}})
	if want := "from=wal to=delete"; !strings.Contains(back, want) {
		t.Errorf("leaving WAL is persistent too; log lacks %q:\n%s", want, back)
	}
	// Between rollback modes nothing in the file changes: no line.
	if trunc := openLogged(t, server.Config{Files: []string{path}, DB: sqlitedb.Settings{JournalMode: "truncate"}}); strings.Contains(trunc, "journal mode changed") {
		t.Errorf("delete → truncate reported as a file change:\n%s", trunc)
	}
}

// TestCreate: with DB.Create a missing file is created (and said so),
// served, and writable; without it Check names the file and the flag.
func TestCreate(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "new.db")
	err := server.Config{Files: []string{path}}.Check()
	if err == nil || !strings.Contains(err.Error(), "no such file") || !strings.Contains(err.Error(), "--create") {
		t.Fatalf("Check of a missing file = %v; want no such file ... --create", err)
	}
	cfg := server.Config{Files: []string{path}, DB: sqlitedb.Settings{Create: true}}
	if err := cfg.Check(); err != nil {
		t.Fatalf("Check with Create: %v", err)
	}
	log := openLogged(t, cfg)
	if !strings.Contains(log, `msg="database file created" db=new file=new.db`) || strings.Contains(log, "journal mode changed") {
		t.Errorf("log of a created file:\n%s", log)
	}
	if fi, err := os.Stat(path); err != nil || fi.Size() == 0 {
		t.Fatalf("created file: %v (size %v); want a database file", err, fi)
	}
	// An immutable file is never created; a missing folder is named.
	for _, tc := range []struct {
		cfg  server.Config
		want string
	}{
		{server.Config{Immutable: []string{filepath.Join(dir, "imm.db")}, DB: sqlitedb.Settings{Create: true}}, "no such file"},
		{server.Config{Files: []string{filepath.Join(dir, "nope", "x.db")}, DB: sqlitedb.Settings{Create: true}}, "folder " + filepath.Join(dir, "nope") + " does not exist"},
		{server.Config{Files: []string{dir}}, "is a folder"},
		{server.Config{}, "no database files"},
		{server.Config{Files: []string{path}, Settings: map[string]string{"nope": "1"}}, "unknown setting"},
		{server.Config{Files: []string{path}, DB: sqlitedb.Settings{JournalMode: "sideways"}}, "journal mode"},
	} {
		if err := tc.cfg.Check(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Check(%+v) = %v; want an error containing %q", tc.cfg, err, tc.want)
		}
	}
}
