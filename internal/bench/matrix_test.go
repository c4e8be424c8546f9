package bench_test

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"lode/internal/bench"
)

func TestDefaultMatrix(t *testing.T) {
	m := bench.DefaultMatrix()
	if len(m.Cells) < 15 || len(m.Cells) > 40 {
		t.Fatalf("default study has %d cells; want 15-40 so it fits in 3 minutes", len(m.Cells))
	}
	budget := float64(len(m.Cells)*m.Repeat) * (m.Duration + m.Warmup).Seconds()
	if budget > 150 {
		t.Errorf("default study measures %.0f s of load; want ≤ 150 s so that with start-up it stays under 3 minutes", budget)
	}
	for i, c := range m.Cells {
		if c.ID != i+1 {
			t.Errorf("cell %d has ID %d", i+1, c.ID)
		}
	}
}

func TestParseMatrixProduct(t *testing.T) {
	m, err := bench.ParseMatrix("m.yaml", []byte(`
duration: 2s
repeat: 2
cells:
  - {workload: write, journal_mode: [delete, wal], concurrency: [1, 8], busy_timeout: 0}
  - workload: read
    rate: 500/s
    workers: 2
`))
	if err != nil {
		t.Fatal(err)
	}
	if m.Repeat != 2 || m.Duration.String() != "2s" {
		t.Errorf("repeat, duration = %d, %v; want 2, 2s", m.Repeat, m.Duration)
	}
	var keys []string
	for _, c := range m.Cells {
		keys = append(keys, c.Key())
	}
	want := []string{
		"lode|delete||0s||||write|c1", "lode|delete||0s||||write|c8",
		"lode|wal||0s||||write|c1", "lode|wal||0s||||write|c8",
		"lode||||||2|read|r500",
	}
	if strings.Join(keys, "\n") != strings.Join(want, "\n") {
		t.Errorf("cells =\n%s\nwant\n%s", strings.Join(keys, "\n"), strings.Join(want, "\n"))
	}
}

func TestParseMatrixErrors(t *testing.T) {
	tests := []struct {
		name, src, want string
	}{
		{"empty", "", "m.yaml: empty matrix file"},
		{"no cells", "name: x\n", "m.yaml: no cells"},
		{"bad yaml", "cells:\n  - {workload: read\n", "m.yaml:"},
		{"unknown top key", "cells: []\nduraton: 2s\n", "m.yaml:2: field duraton not found"},
		{"bad journal", "cells:\n  - workload: write\n    journal_mode: wall\n", `m.yaml:3: journal_mode "wall": want one of delete, truncate, persist, wal`},
		{"bad workload", "cells:\n  - {workload: reed}\n", `m.yaml:2: workload "reed": want one of`},
		{"unknown dim", "cells:\n  - workload: read\n    concurency: 4\n", `m.yaml:3: unknown dimension "concurency"`},
		{"no workload", "cells:\n  - {concurrency: 4}\n", "m.yaml:2: group has no workload"},
		{"both models", "cells:\n  - {workload: read, concurrency: 4, rate: 10}\n", "m.yaml:2: a group sets either concurrency"},
		{"bad busy", "cells:\n  - {workload: read, busy_timeout: soon}\n", `m.yaml:2: busy_timeout "soon"`},
		{"bad concurrency", "cells:\n  - {workload: read, concurrency: [1, -3]}\n", `m.yaml:2: concurrency "-3"`},
		{"bad duration", "duration: fast\ncells:\n  - {workload: read}\n", `m.yaml:1: duration "fast"`},
		{"bad repeat", "repeat: 0\ncells:\n  - {workload: read}\n", `m.yaml:1: repeat "0"`},
		{"undefined target", "cells:\n  - {workload: read, target: nginx}\n", `m.yaml:2: target "nginx" is not defined`},
		{"target without port", "targets:\n  ds:\n    command: datasette serve {db}\ncells:\n  - {workload: read, target: ds}\n", `m.yaml:2: target "ds": command has no {port}`},
		{"target cannot vary", "targets:\n  ds:\n    command: datasette {db} -p {port}\ncells:\n  - {workload: read, target: ds,\n     journal_mode: wal}\n", `m.yaml:6: target "ds" cannot vary journal_mode`},
		{"empty list", "cells:\n  - {workload: read, rate: []}\n", "m.yaml:2: rate: empty list"},
		{"huge product", "cells:\n  - {workload: [read, write, point, txn, counter, mixed], concurrency: [1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20], workers: [0,1,2,3,4,5,6,7,8,9], journal_mode: [wal, delete, truncate, persist], txlock: [deferred, immediate]}\n", "m.yaml:2: group multiplies out to more than 5000 cells"},
		{"duplicate cells", "cells:\n  - {workload: read}\n  - {workload: read, concurrency: 8}\n", "cell 2 repeats cell 1"},
		{"url and path", "targets:\n  ds:\n    command: ds {db} -p {port}\n    workloads:\n      read:\n        - {url: /a, path: /b}\n", "m.yaml:6: give url: or path:, not both"},
		{"unknown request field", "targets:\n  ds:\n    command: ds {db} -p {port}\n    workloads:\n      read:\n        - url: /a\n          boddy: x\n", "m.yaml:7: field boddy not found in a workload request"},
		{"url not a path", "targets:\n  ds:\n    command: ds {db} -p {port}\n    workloads:\n      read:\n        - {url: \"http://x/a\"}\ncells:\n  - {workload: read, target: ds}\n", `target "ds": workload "read": url "http://x/a" must be a path`},
		{"unknown placeholder", "targets:\n  dj:\n    command: gunicorn -w {worker} -b :{port}\ncells:\n  - {workload: read, target: dj}\n", `m.yaml:2: target "dj": command: unknown placeholder {worker}`},
		{"pg placeholder without service", "targets:\n  dj:\n    command: x {port}\n    env: {PGPORT: \"{pg_port}\"}\ncells:\n  - {workload: read, target: dj}\n", `env PGPORT: unknown placeholder {pg_port}`},
		{"unterminated quote", "targets:\n  dj:\n    command: \"x {port} 'oops\"\ncells:\n  - {workload: read, target: dj}\n", `command: unterminated ' quote`},
		{"bad setup placeholder", "targets:\n  dj:\n    command: x {port}\n    setup: migrate {dbb}\ncells:\n  - {workload: read, target: dj}\n", `setup: unknown placeholder {dbb}`},
		{"unknown service", "targets:\n  dj:\n    command: x {port}\n    services: [mysql]\ncells:\n  - {workload: read, target: dj}\n", `unknown service "mysql"`},
		{"bad engine", "targets:\n  dj:\n    command: x {port}\n    engine: oracle\ncells:\n  - {workload: read, target: dj}\n", `engine "oracle"`},
		{"missing database", "targets:\n  dj:\n    command: x {port}\n    database: nope.db\ncells:\n  - {workload: read, target: dj}\n", `database "nope.db": want demo, none, or an existing database file`},
		{"unknown target key", "targets:\n  dj:\n    command: x {port}\n    enviroment: {}\ncells:\n  - {workload: read, target: dj}\n", `field enviroment not found in a target (want command, ready, workloads, dir, env, setup`},
		{"unknown target workload", "targets:\n  dj:\n    command: x {port}\n    workloads: {wrte: [{path: /w/}]}\ncells:\n  - {workload: read, target: dj}\n", `workload "wrte": want one of`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := bench.ParseMatrix("m.yaml", []byte(tt.src))
			var me *bench.MatrixError
			if err == nil || !errors.As(err, &me) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ParseMatrix(%q) = %v; want a MatrixError containing %q", tt.src, err, tt.want)
			}
		})
	}
}

// TestParseMatrixTargetWorkloads: a target's workload requests name their
// path url:, as lode load's scenarios do, or path:, its synonym.
func TestParseMatrixTargetWorkloads(t *testing.T) {
	m, err := bench.ParseMatrix("m.yaml", []byte(`
targets:
  ds:
    command: datasette serve {db} -p {port}
    workloads:
      read:
        - {url: "/demo/posts.json?author_id={{randInt 1 9}}", weight: 3}
        - {path: /demo/authors.json, name: authors}
      write:
        - name: insert
          method: POST
          url: /demo/events/-/insert
          body: '{"row": {"kind": "x"}}'
          headers: {X-Test: "1"}
cells:
  - {workload: [read, write], target: ds}
`))
	if err != nil {
		t.Fatal(err)
	}
	got := m.Targets["ds"].Workloads
	want := map[string][]bench.RequestSpec{
		"read": {{URL: "/demo/posts.json?author_id={{randInt 1 9}}", Weight: 3}, {Name: "authors", URL: "/demo/authors.json"}},
		"write": {{Name: "insert", Method: "POST", URL: "/demo/events/-/insert", Body: `{"row": {"kind": "x"}}`,
			Headers: map[string]string{"X-Test": "1"}}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("workloads = %+v; want %+v", got, want)
	}
}

func TestLoadMatrixMissingFile(t *testing.T) {
	_, err := bench.LoadMatrix(filepath.Join(t.TempDir(), "nope.yaml"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("LoadMatrix(missing) = %v; want os.ErrNotExist", err)
	}
}

func TestAddTarget(t *testing.T) {
	m := bench.DefaultMatrix()
	n := len(m.Cells)
	if err := m.AddTarget("/usr/bin/datasette serve {db} -p {port} --workers {workers}", 32); err != nil {
		t.Fatal(err)
	}
	if got := len(m.Cells) - n; got != 6 {
		t.Errorf("AddTarget with {workers} added %d cells; want 6 (read, point × 1, 2, 4 workers)", got)
	}
	if c := m.Cells[n]; c.Target != "datasette" || c.ID != n+1 || c.Workers != "1" {
		t.Errorf("first added cell = %+v", c)
	}
	if err := m.AddTarget("datasette serve {db}", 32); err == nil || !strings.Contains(err.Error(), "{port}") {
		t.Errorf("AddTarget without {port} = %v; want an error naming {port}", err)
	}
}

// TestParseMatrixTargetSetup parses a target that carries its own setup:
// working directory, environment with placeholders, a setup command, its
// own database and the postgres service, with quoted arguments.
func TestParseMatrixTargetSetup(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "app.db"), []byte("x"), 0o644)
	file := filepath.Join(dir, "m.yaml")
	m, err := bench.ParseMatrix(file, []byte(`
targets:
  dj:
    dir: "{examples}/django"
    env: {STUDY_SQLITE_PATH: "{db}", STUDY_SQLITE_JOURNAL_MODE: "{journal_mode}", STUDY_SQLITE_TXLOCK: "{txlock}"}
    setup: python3 manage.py study_setup --label 'two words' "{dir}/x y"
    command: gunicorn --workers {workers} -b 127.0.0.1:{port} "studyapp.wsgi"
    database: app.db
    install: apt-get install gunicorn
  pg:
    app: dj
    services: [postgres]
    database: none
    env: {URL: "{pg_url}"}
    command: gunicorn -w {workers} -b 127.0.0.1:{port} studyapp.wsgi
cells:
  - {target: dj, workload: txn, workers: 2, journal_mode: [delete, wal], txlock: immediate}
  - {target: pg, workload: txn, workers: 2}
`))
	if err != nil {
		t.Fatal(err)
	}
	dj, pg := m.Targets["dj"], m.Targets["pg"]
	if got := strings.Join(dj.SetupArgv, "|"); got != "python3|manage.py|study_setup|--label|two words|{dir}/x y" {
		t.Errorf("setup split = %q", got)
	}
	if got := strings.Join(dj.Argv, "|"); got != "gunicorn|--workers|{workers}|-b|127.0.0.1:{port}|studyapp.wsgi" {
		t.Errorf("command split = %q", got)
	}
	if dj.Database != filepath.Join(dir, "app.db") || dj.Engine != bench.EngineSQLite || dj.App != "dj" || dj.Install != "apt-get install gunicorn" {
		t.Errorf("dj = database %q, engine %q, app %q, install %q", dj.Database, dj.Engine, dj.App, dj.Install)
	}
	if pg.Database != bench.DatabaseNone || pg.Engine != bench.EnginePostgres || pg.App != "dj" {
		t.Errorf("pg = database %q, engine %q, app %q; want none, postgresql, dj", pg.Database, pg.Engine, pg.App)
	}
	// journal_mode and txlock vary through env placeholders.
	if len(m.Cells) != 3 || m.Cells[1].JournalMode != "wal" || m.Cells[2].Engine != bench.EnginePostgres || m.Cells[2].App != "dj" {
		t.Errorf("cells = %+v", m.Cells)
	}
}

func TestShippedStudies(t *testing.T) {
	for _, name := range bench.StudyNames() {
		if _, err := bench.Study(name); err != nil {
			t.Errorf("study %s: %v", name, err)
		}
	}
	if _, err := bench.Study("nope"); err == nil || !strings.Contains(err.Error(), "default, seed") {
		t.Errorf("Study(nope) = %v; want the list of studies", err)
	}
	m, err := bench.Study("seed")
	if err != nil {
		t.Fatal(err)
	}
	engines := map[string]bool{}
	targets := map[string]bool{}
	for _, c := range m.Cells {
		targets[c.Target] = true
		if c.App == "django" {
			engines[c.Engine] = true
		}
	}
	for _, want := range []string{"django", "django-pg", "datasette", "datasette-gunicorn", "lode"} {
		if !targets[want] {
			t.Errorf("seed study has no %s cells", want)
		}
	}
	if !engines[bench.EngineSQLite] || !engines[bench.EnginePostgres] {
		t.Errorf("seed study runs django on %v; want sqlite and postgresql", engines)
	}
}
