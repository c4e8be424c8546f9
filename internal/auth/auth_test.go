package auth_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"lode/internal/auth"
	"lode/internal/config"
)

func TestMatches(t *testing.T) {
	alice := auth.Actor{"id": "alice", "roles": []any{"staff", "dev"}}
	tests := []struct {
		name  string
		actor auth.Actor
		allow any
		want  bool
	}{
		{"true", nil, true, true},
		{"false", alice, false, false},
		{"id match", alice, map[string]any{"id": "alice"}, true},
		{"id mismatch", alice, map[string]any{"id": "bob"}, false},
		{"id in list", alice, map[string]any{"id": []any{"bob", "alice"}}, true},
		{"star needs key", alice, map[string]any{"id": "*"}, true},
		{"star anonymous", nil, map[string]any{"id": "*"}, false},
		{"actor list value", alice, map[string]any{"roles": "dev"}, true},
		{"actor list vs list", alice, map[string]any{"roles": []any{"ops", "staff"}}, true},
		{"missing key", alice, map[string]any{"team": "x"}, false},
		{"unauthenticated anon", nil, map[string]any{"unauthenticated": true}, true},
		{"unauthenticated actor", alice, map[string]any{"unauthenticated": true}, false},
		{"any key matches", alice, map[string]any{"id": "bob", "roles": "dev"}, true},
		{"anonymous vs id", nil, map[string]any{"id": "alice"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := auth.Matches(tt.actor, tt.allow); got != tt.want {
				t.Errorf("Matches(%v, %v) = %v; want %v", tt.actor, tt.allow, got, tt.want)
			}
		})
	}
}

const yamlCfg = `
permissions:
  insert-row:
    id: alice
databases:
  data:
    allow_sql: false
    permissions:
      create-table: {id: [alice, bob]}
    tables:
      logs:
        permissions:
          insert-row: true
      secret:
        allow: {id: alice}
        permissions:
          insert-row: false
    queries:
      add:
        sql: INSERT INTO logs(m) VALUES (:m)
        write: true
        allow: {id: bob}
`

func TestCheckerMostSpecificWins(t *testing.T) {
	cfg, err := config.Parse([]byte(yamlCfg))
	if err != nil {
		t.Fatal(err)
	}
	c := &auth.Checker{Config: cfg}
	alice, bob := auth.Actor{"id": "alice"}, auth.Actor{"id": "bob"}
	tests := []struct {
		actor                auth.Actor
		action, db, resource string
		want                 bool
	}{
		{alice, auth.InsertRow, "data", "people", true}, // instance block
		{bob, auth.InsertRow, "data", "people", false},
		{nil, auth.InsertRow, "data", "logs", true}, // table block: anyone
		{alice, auth.InsertRow, "data", "secret", false},
		{bob, auth.CreateTable, "data", "", true},
		{nil, auth.CreateTable, "data", "", false},
		{nil, auth.DropTable, "data", "logs", false}, // default deny
		{nil, auth.ViewTable, "data", "logs", true},  // default allow
		{bob, auth.ViewTable, "data", "secret", false},
		{nil, auth.ExecuteSQL, "data", "", false},
		{nil, auth.ExecuteSQL, "other", "", true},
		{alice, auth.ViewQuery, "data", "add", false},
		{bob, auth.ViewQuery, "data", "add", true},
	}
	for _, tt := range tests {
		if got := c.Allowed(tt.actor, nil, tt.action, tt.db, tt.resource); got != tt.want {
			t.Errorf("Allowed(%v, %s, %s, %s) = %v; want %v", tt.actor, tt.action, tt.db, tt.resource, got, tt.want)
		}
	}
	root := auth.Actor{"id": "root"}
	if c.Allowed(root, nil, auth.DropTable, "data", "logs") {
		t.Error("root may drop without --root")
	}
	c.Root = true
	if !c.Allowed(root, nil, auth.DropTable, "data", "logs") {
		t.Error("root may not drop with --root")
	}
	r := &auth.Restrictions{Resources: map[string]map[string][]string{"data": {"logs": {"ir"}}}}
	if !c.Allowed(root, r, auth.InsertRow, "data", "logs") || c.Allowed(root, r, auth.DropTable, "data", "logs") ||
		c.Allowed(root, r, auth.InsertRow, "data", "people") {
		t.Error("restrictions not applied to root")
	}
}

func TestTokens(t *testing.T) {
	secret := []byte("s3cret")
	now := time.Unix(1_700_000_000, 0)
	tok, err := auth.CreateToken(secret, auth.TokenOptions{Actor: "alice", ExpiresAfter: time.Hour, Now: now,
		Restrict: &auth.Restrictions{All: []string{"vi"}, Databases: map[string][]string{"data": {"ir", "update-row"}}}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tok, auth.TokenPrefix) {
		t.Fatalf("token %q lacks prefix", tok)
	}
	actor, r, err := auth.VerifyToken(secret, tok, now.Add(time.Minute))
	if err != nil {
		t.Fatalf("VerifyToken: %v", err)
	}
	if actor.ID() != "alice" || !r.Permits(auth.InsertRow, "data", "t") || !r.Permits(auth.UpdateRow, "data", "") ||
		r.Permits(auth.InsertRow, "other", "t") || !r.Permits(auth.ViewInstance, "", "") {
		t.Errorf("actor %v restrictions %+v", actor, r)
	}
	if _, _, err := auth.VerifyToken(secret, tok, now.Add(time.Hour)); !errors.Is(err, auth.ErrTokenExpired) {
		t.Errorf("expired: err = %v", err)
	}
	if _, _, err := auth.VerifyToken([]byte("other"), tok, now); !errors.Is(err, auth.ErrTokenInvalid) {
		t.Errorf("wrong secret: err = %v", err)
	}
	// Tamper with the payload: change the actor, keep the signature.
	body, sig, _ := strings.Cut(strings.TrimPrefix(tok, auth.TokenPrefix), ".")
	forged, _ := auth.CreateToken([]byte("attacker"), auth.TokenOptions{Actor: "root", Now: now})
	fbody, _, _ := strings.Cut(strings.TrimPrefix(forged, auth.TokenPrefix), ".")
	for _, bad := range []string{auth.TokenPrefix + fbody + "." + sig, auth.TokenPrefix + body + "x." + sig, "garbage", auth.TokenPrefix + body} {
		if _, _, err := auth.VerifyToken(secret, bad, now); !errors.Is(err, auth.ErrTokenInvalid) {
			t.Errorf("VerifyToken(%q) err = %v; want ErrTokenInvalid", bad, err)
		}
	}
	if _, err := auth.CreateToken(secret, auth.TokenOptions{Actor: "a", Restrict: &auth.Restrictions{All: []string{"fly"}}}); err == nil {
		t.Error("unknown action accepted")
	}
	if _, err := auth.CreateToken(secret, auth.TokenOptions{}); err == nil {
		t.Error("token without actor accepted")
	}
}

func TestLoadSecretGeneratesPrivateFile(t *testing.T) {
	t.Setenv(auth.SecretEnv, "")
	dir := t.TempDir()
	cfg := filepath.Join(dir, "lode.yaml")
	a, err := auth.LoadSecret("", cfg)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(dir, auth.SecretFileName))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("secret file mode %v; want 0600", st.Mode().Perm())
	}
	b, err := auth.LoadSecret("", cfg)
	if err != nil || string(a) != string(b) || len(a) < 32 {
		t.Errorf("second load = %q, %v; want the same secret %q", b, err, a)
	}
	if s, _ := auth.LoadSecret("flag", cfg); string(s) != "flag" {
		t.Errorf("flag not preferred: %q", s)
	}
	t.Setenv(auth.SecretEnv, "env")
	if s, _ := auth.LoadSecret("", cfg); string(s) != "env" {
		t.Errorf("env not preferred over file: %q", s)
	}
}
