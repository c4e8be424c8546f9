package bench

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"lode/internal/report"
)

// fsyncSamples is how many 4 KiB write+fdatasync rounds measure the disk.
const fsyncSamples = 40

// DescribeMachine returns the CPU, core count, kernel, Go and SQLite
// versions, and the median time of a 4 KiB write plus fsync in dir (the
// cost every synchronous=FULL commit pays at least once).
func DescribeMachine(ctx context.Context, dir string) report.Machine {
	m := report.Machine{Cores: runtime.NumCPU(), OS: runtime.GOOS + "/" + runtime.GOARCH, GoVersion: runtime.Version(), CPU: "unknown"}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	m.SQLiteVersion = sqliteVersion(ctx)
	if us, err := measureFsync(dir); err != nil {
		m.FsyncNote = "(not measured: " + err.Error() + ")"
	} else {
		m.FsyncMicros = us
		m.FsyncNote = fmt.Sprintf("(median of %d × 4 KiB write + fdatasync in the work directory %s)", fsyncSamples, dir)
		if onTmpfs(dir) {
			m.FsyncNote += " — WARNING: this is tmpfs (RAM): fsync is free here, so synchronous=FULL costs nothing; use --workdir on a real disk"
		}
	}
	return m
}

func sqliteVersion(ctx context.Context) string {
	db, err := sql.Open("sqlite3", ":memory:")
	if err != nil {
		return "unknown"
	}
	defer db.Close()
	var v string
	if err := db.QueryRowContext(ctx, "SELECT sqlite_version()").Scan(&v); err != nil {
		return "unknown"
	}
	return v + " (the SQLite compiled into lode)"
}

func measureFsync(dir string) (float64, error) {
	f, err := os.CreateTemp(dir, "fsync-*.tmp")
	if err != nil {
		return 0, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	buf := make([]byte, 4096)
	var ds []time.Duration
	for i := 0; i < fsyncSamples; i++ {
		start := time.Now()
		if _, err := f.WriteAt(buf, int64(i%8)*4096); err != nil {
			return 0, err
		}
		if err := fdatasync(f); err != nil {
			return 0, err
		}
		ds = append(ds, time.Since(start))
	}
	slices.Sort(ds)
	return float64(ds[len(ds)/2].Nanoseconds()) / 1000, nil
}

// copyFile copies src to dst (a fresh database copy per cell run).
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := out.ReadFrom(in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
