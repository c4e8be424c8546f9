package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"lode/internal/server"
)

// TestDeployManifestsUseServeFlags parses the lode serve command lines of
// deploy/ (Compose and Kubernetes, which cannot run here) with lode
// serve's own flags and replication checks, so the manifests cannot drift
// from the flags.
func TestDeployManifestsUseServeFlags(t *testing.T) {
	var cmds [][]string
	b, err := os.ReadFile("../../deploy/compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var compose struct {
		Services map[string]struct {
			Command string `yaml:"command"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(b, &compose); err != nil {
		t.Fatal(err)
	}
	for _, s := range compose.Services {
		if f := strings.Fields(s.Command); len(f) > 0 && f[0] == "serve" {
			for i := range f {
				f[i] = strings.Trim(f[i], `"`)
			}
			cmds = append(cmds, f)
		}
	}
	files, _ := filepath.Glob("../../deploy/kubernetes/*.yaml")
	for _, path := range files {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(strings.NewReader(string(b)))
		for {
			var doc struct {
				Spec struct {
					Template struct {
						Spec struct {
							Containers []struct {
								Args []string `yaml:"args"`
							} `yaml:"containers"`
						} `yaml:"spec"`
					} `yaml:"template"`
				} `yaml:"spec"`
			}
			if dec.Decode(&doc) != nil {
				break
			}
			for _, c := range doc.Spec.Template.Spec.Containers {
				if len(c.Args) > 0 && c.Args[0] == "serve" {
					cmds = append(cmds, c.Args)
				}
			}
		}
	}
	if len(cmds) < 4 {
		t.Fatalf("found %d lode serve command lines in deploy/; want the primary and the replica of Compose and Kubernetes", len(cmds))
	}
	for _, args := range cmds {
		f := newServeCmd().Flags()
		if err := f.Parse(args[1:]); err != nil {
			t.Errorf("%s: %v", strings.Join(args, " "), err)
			continue
		}
		dir := t.TempDir()
		if f.Changed("follow-dir") {
			f.Set("follow-dir", dir)
		}
		for _, fl := range []string{"replicate", "follow"} {
			if v, _ := f.GetString(fl); strings.HasPrefix(v, "$(") {
				f.Set(fl, "s3://bucket/data") // Kubernetes fills $(LODE_REPLICA_URL) in
			}
		}
		cfg := server.Config{Files: f.Args()}
		cfg.DB.JournalMode, _ = f.GetString("journal-mode")
		if _, err := replicaConfig(f, cfg); err != nil {
			t.Errorf("%s: %v", strings.Join(args, " "), err)
		}
	}
}
