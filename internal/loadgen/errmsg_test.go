package loadgen_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"lode/internal/loadgen"
)

// TestErrorGroupsFromRecordedBodies serves error bodies recorded from real
// servers (testdata/errors) and checks the message each failure is
// grouped under: the cause the body names, whatever its format, and lock
// errors recognisable as such.
func TestErrorGroupsFromRecordedBodies(t *testing.T) {
	for _, tt := range []struct {
		file   string
		status int
		want   string
	}{
		{"django-debug-500.html", 500, "500 OperationalError: database is locked"},
		{"django-debug-500.txt", 500, "500 OperationalError: database is locked"},
		{"django-500-firstline.txt", 500, "500 OperationalError: database is locked"},
		{"django-prod-500.html", 500, "500 Server Error (500)"},
		{"gunicorn-500.html", 500, "500 Internal Server Error"},
		{"datasette-400.json", 400, "400 _col=bad - invalid columns"},
		{"datasette-write-400.json", 400, "400 UNIQUE constraint failed: items.id"},
		{"python-traceback.txt", 500, "500 OperationalError: database is locked"},
		{"go-http-error.txt", 503, "503 database is locked"},
	} {
		t.Run(tt.file, func(t *testing.T) {
			body, err := os.ReadFile(filepath.Join("testdata", "errors", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tt.status)
				w.Write(body)
			}))
			defer srv.Close()
			// Both drivers keep error bodies: the event loops and the
			// goroutine per user.
			forEachDriver(t, func(t *testing.T, driver func(loadgen.Config) loadgen.Config) {
				res, err := loadgen.Run(context.Background(), driver(loadgen.Config{Scenario: loadgen.URLScenario(srv.URL), Users: 1, MaxRequests: 3}))
				if err != nil {
					t.Fatal(err)
				}
				if len(res.Total.Errors) != 1 || res.Total.Errors[0].Message != tt.want || res.Total.Errors[0].Count != 3 {
					var got []string
					for _, e := range res.Total.Errors {
						got = append(got, e.Message)
					}
					t.Errorf("error groups = %q; want 3 × %q", got, tt.want)
				}
			})
		})
	}
}
