package bench

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"lode/internal/report"
)

// DefaultMatrixYAML is the default study: the cells that answer findings 1-5
// on lode itself (findings.go), not the full product of every dimension. It is a
// matrix file like any other, so `lode bench --print-matrix > m.yaml` gives
// users a starting point.
//
//go:embed default.yaml
var DefaultMatrixYAML []byte

// SeedMatrixYAML is the seed study: the 2022 study on its own stack —
// Lode's Django reference app on SQLite (rollback/WAL, deferred/IMMEDIATE,
// 1/2/4 workers) and on a throwaway PostgreSQL, Datasette, `datasette
// gunicorn` and lode on the same workloads.
//
//go:embed seed.yaml
var SeedMatrixYAML []byte

// Studies are the studies shipped with lode, by name (lode bench --study).
var studies = map[string][]byte{"default": DefaultMatrixYAML, "seed": SeedMatrixYAML}

// StudyNames returns the shipped studies' names, sorted.
func StudyNames() []string {
	names := make([]string, 0, len(studies))
	for n := range studies {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// StudyYAML returns a shipped study's matrix file.
func StudyYAML(name string) ([]byte, error) {
	b, ok := studies[name]
	if !ok {
		return nil, fmt.Errorf("--study %q: want one of %s (or a matrix file with -f)", name, strings.Join(StudyNames(), ", "))
	}
	return b, nil
}

// Study returns a shipped study, parsed.
func Study(name string) (*Matrix, error) {
	b, err := StudyYAML(name)
	if err != nil {
		return nil, err
	}
	return ParseMatrix(name+".yaml", b)
}

// LodeTarget is the name of the built-in target: the lode binary's own
// `serve` command, started with each cell's settings as flags.
const LodeTarget = "lode"

// Values each setting dimension accepts. An empty value means "not set":
// the flag is not passed and the server's default applies.
var (
	journalModes = []string{"delete", "truncate", "persist", "wal"}
	synchronous  = []string{"full", "normal", "off"}
	txLocks      = []string{"deferred", "immediate"}
	writers      = []string{"single", "pool"}
)

// Matrix is a parsed and validated study: run parameters, external targets
// and the cells to measure, in order. The zero value is not useful; build one
// with ParseMatrix or DefaultMatrix.
type Matrix struct {
	// Name labels the study in the report.
	Name string
	// Duration is how long each run of a cell is measured.
	Duration time.Duration
	// Warmup is how long load runs before measuring starts.
	Warmup time.Duration
	// Repeat is how many times each cell is run (fresh database each time).
	Repeat int
	// Targets are the external targets by name ("lode" is built in).
	Targets map[string]*Target
	// Cells are the cells in run order, numbered from 1.
	Cells []Cell
	// Source is the matrix file's text, kept for the report.
	Source string
}

// Target is an external server started from a command template.
//
// Placeholders, substituted after the command is split into arguments (so a
// path with spaces stays one argument): {db} (the run's database file),
// {dir} (the run's own folder), {port}, {host}, one per setting dimension —
// {workers}, {journal_mode}, {synchronous}, {busy_timeout},
// {busy_timeout_ms}, {txlock}, {writer}, empty when the cell leaves it unset —
// {examples} (lode's bundled example apps, extracted for the study),
// {workdir}, and with the postgres service {pg_host}, {pg_port}, {pg_user},
// {pg_db} (a fresh database for the run) and {pg_url}. A cell may only set a
// dimension whose placeholder the target's command, setup or env contains.
type Target struct {
	// Name is the target's key in the matrix file.
	Name string
	// Command is the command template; Argv is it split into arguments.
	Command string
	Argv    []string
	// Ready is the path polled until it answers 2xx; default "/".
	Ready string
	// Workloads maps a workload name to its requests for this target;
	// workloads not listed use the Datasette-compatible defaults.
	Workloads map[string][]RequestSpec
	// Dir is the working directory of setup and command (placeholders
	// allowed); default the run's folder.
	Dir string
	// Env adds environment variables (values may hold placeholders) to
	// the setup and the server; the rest of lode's environment is kept.
	Env map[string]string
	// Setup is run before each run's server starts (migrations, journal
	// mode, seed data), with the same directory and environment; a
	// failure fails the run with its output. SetupArgv is it split.
	Setup     string
	SetupArgv []string
	// Check is run once before the study; when it fails the target's
	// cells are skipped with Install as the hint (e.g. a Python module
	// that is not installed). CheckArgv is it split.
	Check     string
	CheckArgv []string
	// Install says how to install what the target needs.
	Install string
	// Database is DatabaseDemo (a copy of the demo database at {db}),
	// DatabaseNone ({db} names a file the setup creates) or the path of a
	// file copied fresh for every run.
	Database string
	// Services are services the target needs (ServicePostgres).
	Services []string
	// Engine is the database engine the target runs on (EngineSQLite or
	// EnginePostgres); finding 6 compares engines within one App.
	Engine string
	// App names the application the target runs; targets with the same
	// App run the same code (default: the target's name).
	App string
}

// Target database sources, services and engines.
const (
	DatabaseDemo    = "demo"
	DatabaseNone    = "none"
	ServicePostgres = "postgres"
	EngineSQLite    = "sqlite"
	EnginePostgres  = "postgresql"
)

// RequestSpec is one weighted request of a workload. URL and Body are
// lode load templates (e.g. {{randInt 1 1000}}).
type RequestSpec struct {
	Name   string `yaml:"name" json:"name"`
	Weight int    `yaml:"weight" json:"weight,omitempty"`
	Method string `yaml:"method" json:"method,omitempty"`
	// URL is the request's path and query on the target, starting with
	// "/". Matrix files name it url:, as lode load's scenario files do;
	// path: is accepted as a synonym.
	URL     string            `yaml:"url" json:"url"`
	Body    string            `yaml:"body" json:"body,omitempty"`
	Headers map[string]string `yaml:"headers" json:"headers,omitempty"`
}

// UnmarshalYAML reads one request of a target's workload, rejecting
// unknown fields (as the rest of a matrix file does) and accepting path:
// for url:.
func (r *RequestSpec) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: a workload request must be a mapping such as {url: /demo/posts.json}", n.Line)
	}
	urlLine := 0
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		var err error
		switch k.Value {
		case "name":
			err = v.Decode(&r.Name)
		case "weight":
			err = v.Decode(&r.Weight)
		case "method":
			err = v.Decode(&r.Method)
		case "url", "path":
			if urlLine != 0 {
				return fmt.Errorf("line %d: give url: or path:, not both (they are the same field)", k.Line)
			}
			urlLine = k.Line
			err = v.Decode(&r.URL)
		case "body":
			err = v.Decode(&r.Body)
		case "headers":
			err = v.Decode(&r.Headers)
		default:
			return fmt.Errorf("line %d: field %s not found in a workload request (want name, weight, method, url, body, headers)", k.Line, k.Value)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// Cell is one point of the matrix. Setting fields hold the normalised value
// or "" when the cell leaves the server's default.
type Cell struct {
	// ID numbers cells from 1 in run order; findings cite these numbers.
	ID          int
	Target      string
	JournalMode string
	Synchronous string
	BusyTimeout string // a time.Duration string such as "5s", or ""
	TxLock      string
	Writer      string
	Workers     string // a non-negative integer, or ""
	Workload    string
	// Concurrency is the closed model's number of virtual users; 0 when
	// Rate is used.
	Concurrency int
	// Rate is the open model's arrival rate in requests per second.
	Rate float64
	// App and Engine come from the target (lode: "lode", sqlite).
	App, Engine string
}

// Key identifies a cell across runs (for --baseline): every dimension, not
// the cell number, so reordered or extended matrices still compare.
func (c Cell) Key() string {
	load := "c" + strconv.Itoa(c.Concurrency)
	if c.Rate > 0 {
		load = "r" + strconv.FormatFloat(c.Rate, 'f', -1, 64)
	}
	return strings.Join([]string{c.Target, c.JournalMode, c.Synchronous, c.BusyTimeout, c.TxLock,
		c.Writer, c.Workers, c.Workload, load}, "|")
}

// BusyTimeoutDuration returns the busy timeout, or -1 when unset.
func (c Cell) BusyTimeoutDuration() time.Duration {
	if c.BusyTimeout == "" {
		return -1
	}
	d, _ := time.ParseDuration(c.BusyTimeout)
	return d
}

// WorkersN returns the worker count, or -1 when unset.
func (c Cell) WorkersN() int {
	if c.Workers == "" {
		return -1
	}
	n, _ := strconv.Atoi(c.Workers)
	return n
}

// MatrixError is a problem in a matrix file, with the line it is on.
type MatrixError struct {
	File string
	Line int
	Msg  string
}

func (e *MatrixError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Msg)
}

// Default run parameters when a matrix file does not set them.
const (
	DefaultDuration = time.Second
	DefaultWarmup   = 300 * time.Millisecond
	DefaultRepeat   = 3
)

// DefaultMatrix returns the parsed default study.
func DefaultMatrix() *Matrix {
	m, err := ParseMatrix("default.yaml", DefaultMatrixYAML)
	if err != nil {
		panic("bench: the embedded default matrix is invalid: " + err.Error())
	}
	return m
}

// LoadMatrix reads and parses a matrix file.
func LoadMatrix(path string) (*Matrix, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read matrix: %w", err)
	}
	return ParseMatrix(path, b)
}

// matrixFile mirrors the YAML document; nodes keep line numbers for errors.
type matrixFile struct {
	Name     string                `yaml:"name"`
	Duration yaml.Node             `yaml:"duration"`
	Warmup   yaml.Node             `yaml:"warmup"`
	Repeat   yaml.Node             `yaml:"repeat"`
	Targets  map[string]targetFile `yaml:"targets"`
	Cells    []map[string]yaml.Node
}

type targetFile struct {
	Command   string                   `yaml:"command"`
	Ready     string                   `yaml:"ready"`
	Workloads map[string][]RequestSpec `yaml:"workloads"`
	Dir       string                   `yaml:"dir"`
	Env       map[string]string        `yaml:"env"`
	Setup     string                   `yaml:"setup"`
	Check     string                   `yaml:"check"`
	Install   string                   `yaml:"install"`
	Database  string                   `yaml:"database"`
	Services  []string                 `yaml:"services"`
	Engine    string                   `yaml:"engine"`
	App       string                   `yaml:"app"`
}

// maxCells bounds a matrix: more cells than this would run for hours.
const maxCells = 5000

// dimensions lists the keys a cell group may use, in product order (the
// last varies fastest, so cells that differ only in load sit together).
var dimensions = []string{"target", "journal_mode", "synchronous", "busy_timeout", "txlock", "writer",
	"workers", "workload", "concurrency", "rate"}

// ParseMatrix parses a matrix file. Each entry of `cells` is a group whose
// keys are dimensions with one value or a list; the group contributes the
// cross product of its values. Errors name the file and line.
func ParseMatrix(file string, src []byte) (*Matrix, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return nil, &MatrixError{File: file, Msg: strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	if len(doc.Content) == 0 {
		return nil, &MatrixError{File: file, Msg: "empty matrix file: it needs a `cells:` list"}
	}
	var mf matrixFile
	dec := yaml.NewDecoder(bytes.NewReader(src))
	dec.KnownFields(true)
	if err := dec.Decode(&mf); err != nil {
		return nil, yamlError(file, err)
	}
	m := &Matrix{Name: mf.Name, Duration: DefaultDuration, Warmup: DefaultWarmup, Repeat: DefaultRepeat,
		Targets: map[string]*Target{}, Source: string(src)}
	if m.Name == "" {
		m.Name = file
	}
	var err error
	if m.Duration, err = durationNode(file, &mf.Duration, "duration", DefaultDuration); err != nil {
		return nil, err
	}
	if m.Duration <= 0 {
		return nil, &MatrixError{File: file, Line: mf.Duration.Line, Msg: "duration must be positive, e.g. 2s"}
	}
	if m.Warmup, err = durationNode(file, &mf.Warmup, "warmup", DefaultWarmup); err != nil {
		return nil, err
	}
	if mf.Repeat.Kind != 0 {
		n, err := strconv.Atoi(mf.Repeat.Value)
		if err != nil || n < 1 || n > 100 {
			return nil, &MatrixError{File: file, Line: mf.Repeat.Line, Msg: fmt.Sprintf("repeat %q: want a whole number from 1 to 100", mf.Repeat.Value)}
		}
		m.Repeat = n
	}
	for name, tf := range mf.Targets {
		t, err := checkTarget(file, findKeyLine(&doc, "targets", name), name, tf)
		if err != nil {
			return nil, err
		}
		m.Targets[name] = t
	}
	if len(mf.Cells) == 0 {
		return nil, &MatrixError{File: file, Line: findKeyLine(&doc, "cells", ""), Msg: "no cells: add a `cells:` list of groups, e.g. `- {workload: read, concurrency: [1, 8]}`"}
	}
	for _, g := range mf.Cells {
		cells, err := expandGroup(file, g, m.Targets)
		if err != nil {
			return nil, err
		}
		m.Cells = append(m.Cells, cells...)
		if len(m.Cells) > maxCells {
			return nil, &MatrixError{File: file, Msg: fmt.Sprintf("the matrix has more than %d cells: split it into several files", maxCells)}
		}
	}
	seen := map[string]int{}
	for i := range m.Cells {
		m.Cells[i].ID = i + 1
		if prev, ok := seen[m.Cells[i].Key()]; ok {
			return nil, &MatrixError{File: file, Msg: fmt.Sprintf("cell %d repeats cell %d (%s): remove one of the groups' overlapping values", i+1, prev, m.Cells[i].Key())}
		}
		seen[m.Cells[i].Key()] = i + 1
	}
	return m, nil
}

// AddTarget adds an external target given on the command line (--target
// TEMPLATE) and cells that compare it with lode on the read workloads, at
// 1, 2 and 4 workers when the template has a {workers} placeholder.
func (m *Matrix) AddTarget(command string, concurrency int) error {
	fields, err := splitCommand(command)
	if err != nil {
		return fmt.Errorf("--target: %w", err)
	}
	if len(fields) == 0 {
		return errors.New("--target is empty: give a command template such as 'datasette serve {db} -p {port}'")
	}
	if !strings.Contains(command, "{port}") {
		return fmt.Errorf("--target %q has no {port} placeholder: the target must listen on the port lode picks", command)
	}
	if err := checkPlaceholders(command, slices.Concat(cellPlaceholders, studyPlaceholders)); err != nil {
		return fmt.Errorf("--target %q: %w", command, err)
	}
	name := fields[0]
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		name = name[i+1:]
	}
	for base, n := name, 2; m.Targets[name] != nil || name == LodeTarget; n++ {
		name = fmt.Sprintf("%s-%d", base, n)
	}
	t := &Target{Name: name, Command: command, Argv: fields, Ready: "/", Database: DatabaseDemo, Engine: EngineSQLite, App: name}
	m.Targets[name] = t
	workers := []string{""}
	if strings.Contains(command, "{workers}") {
		workers = []string{"1", "2", "4"}
	}
	for _, wl := range []string{"read", "point"} {
		for _, w := range workers {
			c := Cell{Target: name, Workers: w, Workload: wl, Concurrency: concurrency, App: t.App, Engine: t.Engine}
			c.ID = len(m.Cells) + 1
			m.Cells = append(m.Cells, c)
		}
	}
	return nil
}

func checkTarget(file string, line int, name string, tf targetFile) (*Target, error) {
	fail := func(format string, args ...any) error {
		return &MatrixError{File: file, Line: line, Msg: fmt.Sprintf("target %q: ", name) + fmt.Sprintf(format, args...)}
	}
	if name == LodeTarget {
		return nil, &MatrixError{File: file, Line: line, Msg: `target name "lode" is built in: choose another name`}
	}
	if strings.TrimSpace(tf.Command) == "" {
		return nil, fail("no command, e.g. command: 'datasette serve {db} -p {port}'")
	}
	if !strings.Contains(tf.Command, "{port}") {
		return nil, fail("command has no {port} placeholder; the target must listen on the port lode picks")
	}
	t := &Target{Name: name, Command: tf.Command, Ready: tf.Ready, Workloads: tf.Workloads, Dir: tf.Dir, Env: tf.Env,
		Setup: tf.Setup, Check: tf.Check, Install: strings.TrimSpace(tf.Install), Services: tf.Services, Engine: tf.Engine, App: tf.App}
	if t.Ready == "" {
		t.Ready = "/"
	}
	if !strings.HasPrefix(t.Ready, "/") {
		return nil, fail("ready %q must be a path starting with /", t.Ready)
	}
	if t.App == "" {
		t.App = name
	}
	for _, svc := range t.Services {
		if svc != ServicePostgres {
			return nil, fail("unknown service %q; lode can start: %s", svc, ServicePostgres)
		}
	}
	allowed := slices.Concat(cellPlaceholders, studyPlaceholders)
	if slices.Contains(t.Services, ServicePostgres) {
		allowed = append(allowed, postgresPlaceholders...)
	}
	switch t.Engine {
	case "":
		t.Engine = EngineSQLite
		if slices.Contains(t.Services, ServicePostgres) {
			t.Engine = EnginePostgres
		}
	case EngineSQLite, EnginePostgres:
	default:
		return nil, fail("engine %q: want %s or %s", t.Engine, EngineSQLite, EnginePostgres)
	}
	switch tf.Database {
	case "", DatabaseDemo:
		t.Database = DatabaseDemo
	case DatabaseNone:
		t.Database = DatabaseNone
	default:
		t.Database = tf.Database
		if !filepath.IsAbs(t.Database) && file != "" {
			t.Database = filepath.Join(filepath.Dir(file), t.Database)
		}
		if st, err := os.Stat(t.Database); err != nil || !st.Mode().IsRegular() {
			return nil, fail("database %q: want demo, none, or an existing database file (relative to the matrix file)", tf.Database)
		}
	}
	split := func(what, s string, required bool) ([]string, error) {
		if strings.TrimSpace(s) == "" {
			if required {
				return nil, fail("%s is empty", what)
			}
			return nil, nil
		}
		if err := checkPlaceholders(s, allowed); err != nil {
			return nil, fail("%s: %v", what, err)
		}
		args, err := splitCommand(s)
		if err != nil {
			return nil, fail("%s: %v", what, err)
		}
		if len(args) == 0 {
			return nil, fail("%s: %v", what, errEmptyCommand)
		}
		return args, nil
	}
	var err error
	if t.Argv, err = split("command", t.Command, true); err != nil {
		return nil, err
	}
	if t.SetupArgv, err = split("setup", t.Setup, false); err != nil {
		return nil, err
	}
	if t.CheckArgv, err = split("check", t.Check, false); err != nil {
		return nil, err
	}
	if err := checkPlaceholders(t.Dir, allowed); err != nil {
		return nil, fail("dir: %v", err)
	}
	for k, v := range t.Env {
		if k == "" || strings.ContainsAny(k, "= ") {
			return nil, fail("env name %q: want a name such as DJANGO_SETTINGS_MODULE", k)
		}
		if err := checkPlaceholders(v, allowed); err != nil {
			return nil, fail("env %s: %v", k, err)
		}
	}
	for wl, reqs := range tf.Workloads {
		if _, ok := Workloads[wl]; !ok {
			return nil, fail("workload %q: want one of %s", wl, strings.Join(WorkloadNames(), ", "))
		}
		if len(reqs) == 0 {
			return nil, fail("workload %q has no requests", wl)
		}
		for _, r := range reqs {
			if !strings.HasPrefix(r.URL, "/") {
				return nil, fail("workload %q: url %q must be a path on the target, starting with /", wl, r.URL)
			}
		}
	}
	return t, nil
}

// uses reports whether the target's command, setup or env mentions the
// placeholder {name} (or a variant such as {name_ms}).
func (t *Target) uses(name string) bool {
	if strings.Contains(t.Command, "{"+name) || strings.Contains(t.Setup, "{"+name) {
		return true
	}
	for _, v := range t.Env {
		if strings.Contains(v, "{"+name) {
			return true
		}
	}
	return false
}

// expandGroup validates one group and returns its cross product.
func expandGroup(file string, g map[string]yaml.Node, targets map[string]*Target) ([]Cell, error) {
	vals := map[string][]string{}
	lines := map[string]int{}
	keys := make([]string, 0, len(g))
	for key := range g {
		keys = append(keys, key)
	}
	// Report problems top to bottom, whatever the map order.
	slices.SortFunc(keys, func(a, b string) int { return g[a].Line - g[b].Line })
	for _, key := range keys {
		node := g[key]
		if !slices.Contains(dimensions, key) {
			return nil, &MatrixError{File: file, Line: node.Line, Msg: fmt.Sprintf("unknown dimension %q; want one of %s", key, strings.Join(dimensions, ", "))}
		}
		lines[key] = node.Line
		var list []string
		switch node.Kind {
		case yaml.ScalarNode:
			list = []string{node.Value}
		case yaml.SequenceNode:
			if len(node.Content) == 0 {
				return nil, &MatrixError{File: file, Line: node.Line, Msg: fmt.Sprintf("%s: empty list", key)}
			}
			for _, v := range node.Content {
				if v.Kind != yaml.ScalarNode {
					return nil, &MatrixError{File: file, Line: v.Line, Msg: fmt.Sprintf("%s: want a value or a list of values", key)}
				}
				list = append(list, v.Value)
			}
		default:
			return nil, &MatrixError{File: file, Line: node.Line, Msg: fmt.Sprintf("%s: want a value or a list of values", key)}
		}
		for i, v := range list {
			nv, err := normalise(key, v, targets)
			if err != nil {
				return nil, &MatrixError{File: file, Line: node.Line, Msg: err.Error()}
			}
			list[i] = nv
		}
		vals[key] = list
	}
	if _, ok := vals["workload"]; !ok {
		return nil, &MatrixError{File: file, Line: groupLine(g), Msg: "group has no workload: add e.g. `workload: read`"}
	}
	_, hasC := vals["concurrency"]
	_, hasR := vals["rate"]
	switch {
	case hasC && hasR:
		return nil, &MatrixError{File: file, Line: lines["rate"], Msg: "a group sets either concurrency (closed model) or rate (open model), not both"}
	case !hasC && !hasR:
		vals["concurrency"] = []string{"8"}
	}
	if _, ok := vals["target"]; !ok {
		vals["target"] = []string{LodeTarget}
	}
	// Bound the cross product before building it.
	n := 1
	for _, list := range vals {
		n *= len(list)
		if n > maxCells {
			return nil, &MatrixError{File: file, Line: groupLine(g), Msg: fmt.Sprintf("group multiplies out to more than %d cells: split it or use fewer values", maxCells)}
		}
	}
	cells := []Cell{{}}
	for _, dim := range dimensions {
		list, ok := vals[dim]
		if !ok {
			continue
		}
		var next []Cell
		for _, c := range cells {
			for _, v := range list {
				c := c
				setDim(&c, dim, v)
				next = append(next, c)
			}
		}
		cells = next
	}
	for i := range cells {
		c := &cells[i]
		if c.Target == LodeTarget {
			c.App, c.Engine = LodeTarget, EngineSQLite
			continue
		}
		t := targets[c.Target]
		c.App, c.Engine = t.App, t.Engine
		for _, dim := range []string{"journal_mode", "synchronous", "busy_timeout", "txlock", "writer", "workers"} {
			if _, set := vals[dim]; set && !t.uses(dim) {
				return nil, &MatrixError{File: file, Line: lines[dim], Msg: fmt.Sprintf("target %q cannot vary %s: its command, setup and env have no {%s} placeholder", c.Target, dim, dim)}
			}
		}
	}
	return cells, nil
}

func setDim(c *Cell, dim, v string) {
	switch dim {
	case "target":
		c.Target = v
	case "journal_mode":
		c.JournalMode = v
	case "synchronous":
		c.Synchronous = v
	case "busy_timeout":
		c.BusyTimeout = v
	case "txlock":
		c.TxLock = v
	case "writer":
		c.Writer = v
	case "workers":
		c.Workers = v
	case "workload":
		c.Workload = v
	case "concurrency":
		c.Concurrency, _ = strconv.Atoi(v)
	case "rate":
		c.Rate, _ = strconv.ParseFloat(v, 64)
	}
}

// normalise checks one dimension value and returns its canonical form.
func normalise(dim, v string, targets map[string]*Target) (string, error) {
	lv := strings.ToLower(strings.TrimSpace(v))
	oneOf := func(allowed []string) (string, error) {
		if slices.Contains(allowed, lv) {
			return lv, nil
		}
		return "", fmt.Errorf("%s %q: want one of %s", dim, v, strings.Join(allowed, ", "))
	}
	switch dim {
	case "target":
		if v == LodeTarget || targets[v] != nil {
			return v, nil
		}
		names := []string{LodeTarget}
		for n := range targets {
			names = append(names, n)
		}
		slices.Sort(names)
		return "", fmt.Errorf("target %q is not defined: define it under `targets:` or use one of %s", v, strings.Join(names, ", "))
	case "journal_mode":
		return oneOf(journalModes)
	case "synchronous":
		return oneOf(synchronous)
	case "txlock":
		return oneOf(txLocks)
	case "writer":
		return oneOf(writers)
	case "workload":
		if _, ok := Workloads[lv]; ok {
			return lv, nil
		}
		return "", fmt.Errorf("workload %q: want one of %s", v, strings.Join(WorkloadNames(), ", "))
	case "busy_timeout":
		if lv == "0" {
			return "0s", nil
		}
		d, err := time.ParseDuration(lv)
		if err != nil || d < 0 {
			return "", fmt.Errorf("busy_timeout %q: want a duration such as 0, 5s or 20s", v)
		}
		return d.String(), nil
	case "workers":
		n, err := strconv.Atoi(lv)
		if err != nil || n < 0 || n > 64 {
			return "", fmt.Errorf("workers %q: want a whole number from 0 to 64", v)
		}
		return strconv.Itoa(n), nil
	case "concurrency":
		n, err := strconv.Atoi(lv)
		if err != nil || n < 1 || n > 10000 {
			return "", fmt.Errorf("concurrency %q: want a whole number from 1 to 10000", v)
		}
		return strconv.Itoa(n), nil
	case "rate":
		r, err := strconv.ParseFloat(strings.TrimSuffix(lv, "/s"), 64)
		if err != nil || r <= 0 {
			return "", fmt.Errorf("rate %q: want requests per second, e.g. 500 or 500/s", v)
		}
		return strconv.FormatFloat(r, 'f', -1, 64), nil
	}
	return "", fmt.Errorf("unknown dimension %q", dim)
}

func durationNode(file string, n *yaml.Node, key string, def time.Duration) (time.Duration, error) {
	if n.Kind == 0 {
		return def, nil
	}
	d, err := time.ParseDuration(n.Value)
	if err != nil || d < 0 {
		return 0, &MatrixError{File: file, Line: n.Line, Msg: fmt.Sprintf("%s %q: want a duration such as 1500ms or 2s", key, n.Value)}
	}
	return d, nil
}

// yamlError turns a yaml.v3 decode error ("yaml: line 3: ...") into a
// MatrixError with the line split out.
func yamlError(file string, err error) error {
	var te *yaml.TypeError
	msg := err.Error()
	if errors.As(err, &te) && len(te.Errors) > 0 {
		msg = te.Errors[0]
	}
	msg = strings.TrimPrefix(msg, "yaml: ")
	var line int
	if strings.HasPrefix(msg, "line ") {
		rest := msg[len("line "):]
		if i := strings.IndexByte(rest, ':'); i > 0 {
			if n, err := strconv.Atoi(rest[:i]); err == nil {
				line, msg = n, strings.TrimSpace(rest[i+1:])
			}
		}
	}
	msg = strings.Replace(msg, "in type bench.matrixFile", "in a matrix file (want name, duration, warmup, repeat, targets, cells)", 1)
	msg = strings.Replace(msg, "in type bench.targetFile", "in a target (want command, ready, workloads, dir, env, setup, check, install, database, services, engine, app)", 1)
	return &MatrixError{File: file, Line: line, Msg: msg}
}

// findKeyLine returns the line of key (or of key.sub) in the top-level map.
func findKeyLine(doc *yaml.Node, key, sub string) int {
	if doc == nil || len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return 0
	}
	top := doc.Content[0]
	for i := 0; i+1 < len(top.Content); i += 2 {
		if top.Content[i].Value != key {
			continue
		}
		if sub == "" {
			return top.Content[i].Line
		}
		v := top.Content[i+1]
		for j := 0; j+1 < len(v.Content); j += 2 {
			if v.Content[j].Value == sub {
				return v.Content[j].Line
			}
		}
		return top.Content[i].Line
	}
	return 0
}

func groupLine(g map[string]yaml.Node) int {
	line := 0
	for _, n := range g {
		if line == 0 || (n.Line > 0 && n.Line < line) {
			line = n.Line
		}
	}
	return line
}

// Report returns the cell's settings as a report.Cell with no results yet.
func (c Cell) Report() report.Cell {
	return report.Cell{ID: c.ID, Key: c.Key(), Target: c.Target, App: c.App, Engine: c.Engine, JournalMode: c.JournalMode, Synchronous: c.Synchronous,
		BusyTimeout: c.BusyTimeout, TxLock: c.TxLock, Writer: c.Writer, Workers: c.Workers, Workload: c.Workload,
		Concurrency: c.Concurrency, Rate: c.Rate}
}
