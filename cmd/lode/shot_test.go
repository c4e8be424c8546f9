package main

import (
	"bytes"
	"context"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"lode/internal/shot/shottest"
)

// shotRun runs `lode ARGS...` in-process and returns stderr and the error.
func shotRun(t *testing.T, stdin string, args ...string) (string, string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	root := newRootCmd()
	root.SetArgs(args)
	root.SetIn(strings.NewReader(stdin))
	root.SetOut(&out)
	root.SetErr(&errb)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	err := root.ExecuteContext(ctx)
	return out.String(), errb.String(), err
}

// TestShotCmdFlags checks, with one browser start, that the flags reach the
// shot: -w/-h set the window (the element is half of it), -s/-p crop to it
// plus padding, --retina doubles, -o - writes the PNG to stdout.
func TestShotCmdFlags(t *testing.T) {
	shottest.RequireBrowser(t)
	dir := t.TempDir()
	page := filepath.Join(dir, "page.html")
	if err := os.WriteFile(page, []byte(`<!DOCTYPE html><body style="margin:0"><div id="d" style="margin:20px;width:50vw;height:50vh;background:red"></div></body>`), 0o644); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, err := shotRun(t, "", "shot", page, "-w", "120", "-h", "80", "-s", "#d", "-p", "5", "--retina", "-o", "-")
	if err != nil {
		t.Fatalf("lode shot -o -: %v\n%s", err, stderr)
	}
	cfg, err := png.DecodeConfig(strings.NewReader(stdout))
	// (60+2*5)x(40+2*5) CSS pixels, doubled.
	if err != nil || cfg.Width != 140 || cfg.Height != 100 {
		t.Errorf("stdout PNG %dx%d (%v); want 140x100", cfg.Width, cfg.Height, err)
	}
}

func TestShotCmdErrorsSayWhatToFix(t *testing.T) {
	t.Setenv("DISPLAY", "")
	t.Setenv("WAYLAND_DISPLAY", "")
	tests := []struct {
		stdin string
		args  []string
		want  string
	}{
		{"", []string{"shot"}, "needs exactly one URL"},
		{"", []string{"shot", "http://127.0.0.1:1/", "-o", "x.gif"}, "use .png, .jpg or .pdf"},
		{"", []string{"shot", "http://127.0.0.1:1/", "-o", "x.png", "--quality", "80"}, "--quality applies to JPEG only"},
		{"", []string{"shot", "http://127.0.0.1:1/", "--browser", "/no/such/chromium"}, "apt-get install chromium"},
		{"", []string{"shot", "multi", filepath.Join(t.TempDir(), "none.yaml")}, "open shots file"},
		{"", []string{"shot", "auth", "http://127.0.0.1:1/", "auth.json"}, "use --headless"},
		{"", []string{"shot", "pdf", "http://127.0.0.1:1/", "--scale", "5"}, "--scale 5: want 0.1 to 2"},
		{"- url: http://127.0.0.1:1/\n  sever: x\n", []string{"shot", "multi", "-", "--output-dir", t.TempDir()}, `stdin:2: shot 1: unknown key "sever"`},
	}
	for _, tt := range tests {
		_, _, err := shotRun(t, tt.stdin, tt.args...)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("lode %s: err = %v; want %q", strings.Join(tt.args, " "), err, tt.want)
		}
	}
}
