package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"lode/internal/config"
)

func TestLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lode.yaml")
	doc := `
settings:
  max_insert_rows: 50
permissions:
  insert-row: true
databases:
  demo:
    queries:
      txn:
        write: true
        sql: |-
          SELECT 1;
          UPDATE t SET v = :v
        on_success_message: done
`
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	q := c.Query("demo", "txn")
	if q == nil || !q.Write || q.OnSuccessMessage != "done" || !strings.Contains(q.SQL, "UPDATE") {
		t.Fatalf("query = %+v", q)
	}
	if c.Permissions["insert-row"].Value != true || c.Settings["max_insert_rows"] != 50 {
		t.Errorf("config = %+v", c)
	}
}

func TestParseErrors(t *testing.T) {
	for _, doc := range []string{
		"permision:\n  insert-row: true\n",              // typo at top level
		"permissions:\n  insert-row: 3\n",               // not an allow block
		"databases:\n  d:\n    queries:\n      q: {}\n", // no sql
	} {
		if _, err := config.Parse([]byte(doc)); err == nil {
			t.Errorf("Parse(%q) = nil error", doc)
		}
	}
	if c, err := config.Parse(nil); err != nil || c == nil {
		t.Errorf("Parse(empty) = %v, %v", c, err)
	}
}
