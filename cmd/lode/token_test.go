package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"lode/internal/auth"
)

func TestTokenCreate(t *testing.T) {
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetArgs([]string{"token", "create", "--actor", "bot", "--secret", "s", "--expires-after", "60",
		"--all", "vi", "--database", "data", "ir", "--resource", "data", "logs", "update-row"})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	tok := strings.TrimSpace(out.String())
	actor, r, err := auth.VerifyToken([]byte("s"), tok, time.Now())
	if err != nil {
		t.Fatalf("VerifyToken(%q): %v", tok, err)
	}
	if actor.ID() != "bot" || actor["token_expires"] == nil {
		t.Errorf("actor = %v", actor)
	}
	if !r.Permits(auth.ViewInstance, "", "") || !r.Permits(auth.InsertRow, "data", "x") ||
		!r.Permits(auth.UpdateRow, "data", "logs") || r.Permits(auth.UpdateRow, "data", "other") {
		t.Errorf("restrictions = %+v", r)
	}
	if _, _, err := auth.VerifyToken([]byte("s"), tok, time.Now().Add(2*time.Minute)); err == nil {
		t.Error("token still valid after --expires-after")
	}
}

func TestTokenCreateErrors(t *testing.T) {
	for _, args := range [][]string{
		{"--secret", "s"},                          // no actor
		{"--actor", "a", "--secret", "s", "--all"}, // missing value
		{"--actor", "a", "--secret", "s", "--database", "db"},
		{"--actor", "a", "--secret", "s", "--resource", "db", "t"},
		{"--actor", "a", "--secret", "s", "--expires-after", "soon"},
		{"--actor", "a", "--secret", "s", "--all", "fly"},
		{"--actor", "a", "--secret", "s", "--bogus"},
	} {
		root := newRootCmd()
		root.SetOut(&bytes.Buffer{})
		root.SetArgs(append([]string{"token", "create"}, args...))
		if err := root.Execute(); err == nil {
			t.Errorf("token create %q succeeded; want an error", args)
		}
	}
}

// TestTokenCreateHelp: --help lists every flag token create accepts, with
// its values, and every listed flag is accepted.
func TestTokenCreateHelp(t *testing.T) {
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetArgs([]string{"token", "create", "--help"})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"--actor ID", "--expires-after SECONDS", "--all ACTION", "--database DB ACTION",
		"--resource DB TABLE ACTION", "--secret S", "-c, --config FILE"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("token create --help lacks %q:\n%s", want, out.String())
		}
	}
	create, _, err := newRootCmd().Find([]string{"token", "create"})
	if err != nil {
		t.Fatal(err)
	}
	create.Flags().VisitAll(func(f *pflag.Flag) {
		if f.Name == "help" {
			return
		}
		args := []string{"--actor", "a", "--" + f.Name}
		for range strings.Fields(f.Value.Type()) {
			args = append(args, "1")
		}
		if _, _, _, _, err := parseTokenArgs(args); err != nil && strings.Contains(err.Error(), "unknown argument") {
			t.Errorf("--help lists --%s, but token create refuses it: %v", f.Name, err)
		}
	})
}
