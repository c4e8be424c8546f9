// Package config reads lode.yaml: a subset of Datasette's datasette.yaml
// with settings, per-database and per-table permissions, and canned
// queries (read queries, write queries and multi-statement write scripts).
//
// A minimal file:
//
//	settings:
//	  max_returned_rows: 1000
//	allow:            # who may view the instance (an allow block)
//	  id: "*"
//	permissions:      # instance-wide action -> allow block
//	  insert-row: {id: alice}
//	databases:
//	  fixtures:
//	    allow_sql: false
//	    permissions:
//	      create-table: {id: [alice, bob]}
//	    tables:
//	      logs:
//	        permissions:
//	          insert-row: true
//	    queries:
//	      by_name:
//	        sql: SELECT * FROM people WHERE name = :name
//	      add_log:
//	        sql: INSERT INTO logs(message) VALUES (:message)
//	        write: true
//	        on_success_message: Logged
//
// Config values are read-only after Load and safe for concurrent use.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"gopkg.in/yaml.v3"
)

// Config is the whole lode.yaml file. The zero value is an empty
// configuration: default permissions, no canned queries.
type Config struct {
	// Path is the file the configuration was read from ("" if none).
	Path string `yaml:"-"`
	// Settings are Datasette-style settings (max_returned_rows,
	// sql_time_limit_ms, max_insert_rows, ...) and Lode's SQLite settings
	// (journal_mode, synchronous, busy_timeout, txlock, writer), by name.
	Settings map[string]any `yaml:"settings"`
	// Allow restricts view-instance.
	Allow *Allow `yaml:"allow"`
	// AllowSQL restricts execute-sql on every database.
	AllowSQL *Allow `yaml:"allow_sql"`
	// Permissions maps an action (insert-row, create-table, ...) to the
	// allow block that decides it instance-wide.
	Permissions map[string]*Allow `yaml:"permissions"`
	// Databases holds per-database configuration by database name.
	Databases map[string]*Database `yaml:"databases"`
}

// Database is the configuration of one database.
type Database struct {
	Allow       *Allow            `yaml:"allow"`     // view-database
	AllowSQL    *Allow            `yaml:"allow_sql"` // execute-sql
	Permissions map[string]*Allow `yaml:"permissions"`
	Tables      map[string]*Table `yaml:"tables"`
	Queries     map[string]*Query `yaml:"queries"`
	Extra       map[string]any    `yaml:",inline"`
}

// Table is the configuration of one table.
type Table struct {
	Allow       *Allow            `yaml:"allow"` // view-table
	Permissions map[string]*Allow `yaml:"permissions"`
	Extra       map[string]any    `yaml:",inline"`
}

// Query is a canned query, served at /DB/NAME(.json). A read query runs on
// the read-only pool with its :named parameters taken from the query
// string. A write query (Write true) runs through the database's writer on
// POST; its SQL may hold several statements separated by semicolons, run in
// order in one transaction (a write script).
type Query struct {
	SQL               string            `yaml:"sql"`
	Write             bool              `yaml:"write"`
	Title             string            `yaml:"title"`
	Description       string            `yaml:"description"`
	Params            []string          `yaml:"params"`
	Allow             *Allow            `yaml:"allow"` // view-query
	Permissions       map[string]*Allow `yaml:"permissions"`
	OnSuccessMessage  string            `yaml:"on_success_message"`
	OnSuccessRedirect string            `yaml:"on_success_redirect"`
	OnErrorMessage    string            `yaml:"on_error_message"`
	OnErrorRedirect   string            `yaml:"on_error_redirect"`
	Extra             map[string]any    `yaml:",inline"`
}

// Allow is a Datasette allow block: true (everyone), false (no one), or a
// mapping from actor keys to a value, a list of values or "*" (any actor
// that has the key), plus "unauthenticated: true" for anonymous requests.
// A nil *Allow means "not configured here".
type Allow struct {
	// Value is a bool or a map[string]any, as decoded from YAML.
	Value any
}

// UnmarshalYAML accepts a bool or a mapping.
func (a *Allow) UnmarshalYAML(n *yaml.Node) error {
	var v any
	if err := n.Decode(&v); err != nil {
		return err
	}
	switch v.(type) {
	case bool, map[string]any, nil:
	default:
		return fmt.Errorf("line %d: allow block must be true, false or a mapping like {id: alice}, not %v", n.Line, v)
	}
	a.Value = v
	return nil
}

// Load reads and validates the YAML file at path.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	c, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	c.Path = path
	return c, nil
}

// Parse decodes a lode.yaml document. Unknown top-level keys are errors so
// that a typo does not silently drop a permission.
func Parse(b []byte) (*Config, error) {
	c := &Config{}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	for dbName, d := range c.Databases {
		if d == nil {
			c.Databases[dbName] = &Database{}
			continue
		}
		for name, q := range d.Queries {
			if q == nil || q.SQL == "" {
				return nil, fmt.Errorf("databases.%s.queries.%s: sql is required", dbName, name)
			}
		}
	}
	return c, nil
}

// Database returns the configuration of the named database, or nil.
func (c *Config) Database(name string) *Database {
	if c == nil {
		return nil
	}
	return c.Databases[name]
}

// Query returns the canned query name of database db, or nil.
func (c *Config) Query(db, name string) *Query {
	d := c.Database(db)
	if d == nil {
		return nil
	}
	return d.Queries[name]
}

// Table returns the configuration of table in db, or nil.
func (c *Config) Table(db, table string) *Table {
	d := c.Database(db)
	if d == nil {
		return nil
	}
	return d.Tables[table]
}
