package shottest_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"lode/internal/shot/shottest"
)

func TestMain(m *testing.M) { os.Exit(shottest.Main(m)) }

// TestRequireBrowser runs itself in a child process with an empty PATH, so
// no browser can be found, and checks skip versus failure.
func TestRequireBrowser(t *testing.T) {
	if os.Getenv("SHOTTEST_CHILD") == "1" {
		shottest.RequireBrowser(t)
		t.Log("found a browser")
		return
	}
	tests := []struct {
		require  string
		wantFail bool
		wantOut  string
	}{
		{"1", true, "LODE_REQUIRE_BROWSER=1 but no browser"},
		{"", false, "skipping browser test"},
	}
	for _, tt := range tests {
		cmd := exec.Command(os.Args[0], "-test.run=^TestRequireBrowser$", "-test.v")
		var env []string
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "PATH=") && !strings.HasPrefix(kv, "LODE_") {
				env = append(env, kv)
			}
		}
		cmd.Env = append(env, "SHOTTEST_CHILD=1", "PATH="+t.TempDir(), shottest.RequireEnv+"="+tt.require)
		out, err := cmd.CombinedOutput()
		if failed := err != nil; failed != tt.wantFail {
			t.Errorf("%s=%q: child failed = %v (%v); want %v\n%s", shottest.RequireEnv, tt.require, failed, err, tt.wantFail, out)
		}
		if !strings.Contains(string(out), tt.wantOut) || !strings.Contains(string(out), "apt-get install chromium") {
			t.Errorf("%s=%q: output %q; want %q and the install hint", shottest.RequireEnv, tt.require, out, tt.wantOut)
		}
	}
}

// TestNewTabJourney is the pattern for other packages' browser tests: a
// real server, a tab from the shared browser, clicks and reads via chromedp.
func TestNewTabJourney(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `<!DOCTYPE html><button id="go" onclick="document.getElementById('out').textContent = 'clicked'">Go</button><p id="out">waiting</p>`)
	}))
	defer srv.Close()
	tab := shottest.NewTab(t, shottest.Shared(t))
	if err := chromedp.Do(tab, chromedp.Navigate(srv.URL), chromedp.Click(chromedp.ID("go"))); err != nil {
		t.Fatal(err)
	}
	got, err := chromedp.Run(tab, chromedp.Evaluate[string](`document.getElementById('out').textContent`))
	if err != nil {
		t.Fatal(err)
	}
	if got != "clicked" {
		t.Errorf("#out = %q after the click; want \"clicked\"", got)
	}
}
