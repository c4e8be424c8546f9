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

// TestShotCmdFlags checks that the flags reach the shot: -w/-h set the
// window, --retina doubles it, -s/-p crop, -o picks file and format.
func TestShotCmdFlags(t *testing.T) {
	shottest.RequireBrowser(t)
	dir := t.TempDir()
	page := filepath.Join(dir, "page.html")
	if err := os.WriteFile(page, []byte(`<!DOCTYPE html><body style="margin:0"><div id="d" style="margin:20px;width:40px;height:30px;background:red"></div></body>`), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out.png")
	yaml := "- url: " + page + "\n  output: " + out + "\n  width: 300\n  height: 200\n  retina: true\n- url: " + page + "\n  output: crop.png\n  selector: '#d'\n  padding: 5\n"
	_, stderr, err := shotRun(t, yaml, "shot", "multi", "-", "--output-dir", dir)
	if err != nil {
		t.Fatalf("lode shot multi: %v\n%s", err, stderr)
	}
	for name, want := range map[string][2]int{out: {600, 400}, filepath.Join(dir, "crop.png"): {50, 40}} {
		f, err := os.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := png.DecodeConfig(f)
		f.Close()
		if err != nil || cfg.Width != want[0] || cfg.Height != want[1] {
			t.Errorf("%s: %dx%d (%v); want %dx%d", name, cfg.Width, cfg.Height, err, want[0], want[1])
		}
	}
	if !strings.Contains(stderr, "written to '"+out+"'") {
		t.Errorf("stderr = %q; want the written message", stderr)
	}

	stdout, stderr, err := shotRun(t, "", "shot", page, "-w", "120", "-h", "80", "--retina", "-o", "-")
	if err != nil {
		t.Fatalf("lode shot -o -: %v\n%s", err, stderr)
	}
	cfg, err := png.DecodeConfig(strings.NewReader(stdout))
	if err != nil || cfg.Width != 240 || cfg.Height != 160 {
		t.Errorf("stdout PNG %dx%d (%v); want 240x160", cfg.Width, cfg.Height, err)
	}
}

func TestShotCmdErrorsSayWhatToFix(t *testing.T) {
	t.Setenv("DISPLAY", "")
	t.Setenv("WAYLAND_DISPLAY", "")
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"shot"}, "needs exactly one URL"},
		{[]string{"shot", "http://127.0.0.1:1/", "-o", "x.gif"}, "use .png, .jpg or .pdf"},
		{[]string{"shot", "http://127.0.0.1:1/", "-o", "x.png", "--quality", "80"}, "--quality applies to JPEG only"},
		{[]string{"shot", "http://127.0.0.1:1/", "--browser", "/no/such/chromium"}, "apt-get install chromium"},
		{[]string{"shot", "multi", filepath.Join(t.TempDir(), "none.yaml")}, "open shots file"},
		{[]string{"shot", "auth", "http://127.0.0.1:1/", "auth.json"}, "use --headless"},
		{[]string{"shot", "pdf", "http://127.0.0.1:1/", "--scale", "5"}, "--scale 5: want 0.1 to 2"},
	}
	for _, tt := range tests {
		_, _, err := shotRun(t, "", tt.args...)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("lode %s: err = %v; want %q", strings.Join(tt.args, " "), err, tt.want)
		}
	}
}
