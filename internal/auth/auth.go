// Package auth implements Lode's actors, signed API tokens and permission
// checks, following Datasette 1.0: an actor is a JSON object with an "id";
// tokens are HMAC-signed and may restrict their actor to named actions on
// the whole instance, on databases or on tables; permissions come from
// allow blocks in lode.yaml, and the "root" actor may do everything when
// the server runs with --root.
//
// Everything here is pure computation over values; it is safe for
// concurrent use.
package auth

import (
	"slices"

	"lode/internal/config"
)

// Actions, with Datasette's names. The abbreviations are accepted wherever
// an action is named (tokens, lode token create).
const (
	ViewInstance = "view-instance"
	ViewDatabase = "view-database"
	ViewTable    = "view-table"
	ViewQuery    = "view-query"
	ExecuteSQL   = "execute-sql"
	InsertRow    = "insert-row"
	UpdateRow    = "update-row"
	DeleteRow    = "delete-row"
	CreateTable  = "create-table"
	AlterTable   = "alter-table"
	DropTable    = "drop-table"
)

// abbreviations maps Datasette's short action names to the long ones.
var abbreviations = map[string]string{
	"vi": ViewInstance, "vd": ViewDatabase, "vt": ViewTable, "vq": ViewQuery,
	"es": ExecuteSQL, "ir": InsertRow, "ur": UpdateRow, "dr": DeleteRow,
	"ct": CreateTable, "at": AlterTable, "dt": DropTable,
}

// defaults says which actions are allowed when no allow block decides:
// reading is open, writing is closed (Datasette's defaults).
var defaults = map[string]bool{
	ViewInstance: true, ViewDatabase: true, ViewTable: true, ViewQuery: true, ExecuteSQL: true,
}

// ResolveAction returns the long name of an action or abbreviation, and
// whether it is known.
func ResolveAction(a string) (string, bool) {
	if long, ok := abbreviations[a]; ok {
		return long, true
	}
	for _, long := range abbreviations {
		if long == a {
			return a, true
		}
	}
	return a, false
}

// Actor is the authenticated party of a request: nil for anonymous
// requests, otherwise a JSON object with at least "id".
type Actor map[string]any

// ID returns the actor's id, "" for nil.
func (a Actor) ID() string {
	id, _ := a["id"].(string)
	return id
}

// Restrictions limit what a token may do, whatever its actor could do
// otherwise (Datasette's "_r"): All lists actions on everything, Databases
// actions per database, Resources actions per database and table (or
// canned query). Nil Restrictions restrict nothing.
type Restrictions struct {
	All       []string                       `json:"a,omitempty"`
	Databases map[string][]string            `json:"d,omitempty"`
	Resources map[string]map[string][]string `json:"r,omitempty"`
}

// Permits reports whether the restrictions let action through on db and
// resource (either may be "" for instance- or database-level actions).
func (r *Restrictions) Permits(action, db, resource string) bool {
	if r == nil {
		return true
	}
	has := func(list []string) bool {
		for _, a := range list {
			if long, _ := ResolveAction(a); long == action {
				return true
			}
		}
		return false
	}
	if has(r.All) {
		return true
	}
	if db != "" && has(r.Databases[db]) {
		return true
	}
	if db != "" && resource != "" && has(r.Resources[db][resource]) {
		return true
	}
	return false
}

// Checker decides permissions from a configuration. Root enables the
// "root" actor's blanket permission (lode serve --root).
type Checker struct {
	Config *config.Config
	Root   bool
}

// Allowed reports whether actor may perform action on db and resource (a
// table or canned query name; "" for database- or instance-level actions).
// The most specific configured allow block wins: query or table, then
// database, then instance; without one, reads are allowed and writes
// denied. A token's restrictions (restr) then narrow the answer.
func (c *Checker) Allowed(actor Actor, restr *Restrictions, action, db, resource string) bool {
	if !restr.Permits(action, db, resource) {
		return false
	}
	if c.Root && actor != nil && actor.ID() == "root" {
		return true
	}
	if block := c.block(action, db, resource); block != nil {
		return Matches(actor, block.Value)
	}
	return defaults[action]
}

// block finds the most specific allow block configured for action.
func (c *Checker) block(action, db, resource string) *config.Allow {
	cfg := c.Config
	if cfg == nil {
		return nil
	}
	d := cfg.Database(db)
	if d != nil && resource != "" {
		if q := d.Queries[resource]; q != nil {
			if b := q.Permissions[action]; b != nil {
				return b
			}
			if action == ViewQuery && q.Allow != nil {
				return q.Allow
			}
		}
		if t := d.Tables[resource]; t != nil {
			if b := t.Permissions[action]; b != nil {
				return b
			}
			if action == ViewTable && t.Allow != nil {
				return t.Allow
			}
		}
	}
	if d != nil {
		if b := d.Permissions[action]; b != nil {
			return b
		}
		if action == ViewDatabase && d.Allow != nil {
			return d.Allow
		}
		if action == ExecuteSQL && d.AllowSQL != nil {
			return d.AllowSQL
		}
	}
	if b := cfg.Permissions[action]; b != nil {
		return b
	}
	if action == ViewInstance && cfg.Allow != nil {
		return cfg.Allow
	}
	if action == ExecuteSQL && cfg.AllowSQL != nil {
		return cfg.AllowSQL
	}
	return nil
}

// Matches applies Datasette's actor-matching rules to an allow block:
// true and false are absolute; {unauthenticated: true} matches anonymous
// requests; otherwise the block matches an actor when any key's value (or
// one of its listed values) equals the actor's value for that key (or one
// of them, when the actor's value is a list), or when the block's value is
// "*" and the actor has that key at all.
func Matches(actor Actor, allow any) bool {
	switch v := allow.(type) {
	case nil:
		return true
	case bool:
		return v
	case map[string]any:
		if actor == nil {
			u, _ := v["unauthenticated"].(bool)
			return u
		}
		for key, want := range v {
			have, ok := actor[key]
			if !ok || have == nil {
				continue
			}
			if want == "*" {
				return true
			}
			wants := asList(want)
			for _, h := range asList(have) {
				if slices.ContainsFunc(wants, func(w any) bool { return equal(w, h) }) {
					return true
				}
			}
		}
	}
	return false
}

func asList(v any) []any {
	if l, ok := v.([]any); ok {
		return l
	}
	if l, ok := v.([]string); ok {
		out := make([]any, len(l))
		for i, s := range l {
			out[i] = s
		}
		return out
	}
	return []any{v}
}

// equal compares YAML and JSON scalars (ints from YAML, float64 from JSON).
func equal(a, b any) bool {
	fa, aNum := num(a)
	fb, bNum := num(b)
	if aNum && bNum {
		return fa == fb
	}
	return a == b
}

func num(v any) (float64, bool) {
	switch n := v.(type) {
	case int:
		return float64(n), true
	case int64:
		return float64(n), true
	case float64:
		return n, true
	}
	return 0, false
}
