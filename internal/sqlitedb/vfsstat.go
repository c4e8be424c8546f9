package sqlitedb

/*
#include "vfsstat.h"
*/
import "C"

// Each database opens its connections through its own counting VFS
// (vfsstat.c): a shim over SQLite's default VFS that times fsync by file,
// WAL checkpoints, and the busy handler's sleeps. SQLite exposes none of
// these through its C API per connection, and they are what group commit,
// synchronous=FULL and lock contention cost. The shim adds one indirect
// call per file operation; its counters are per database (one VFS per DB),
// so two databases or two servers in one process never mix them.

// durationBounds are the duration histograms' bucket bounds in
// nanoseconds, shared with the C shim so every duration metric has the
// same buckets: 50 µs to 10 s.
var durationBounds = func() []int64 {
	b := make([]int64, C.LODE_NBOUNDS)
	for i := range b {
		b[i] = int64(C.lode_bounds_ns[i])
	}
	return b
}()

// fileKinds name the shim's file kinds, in its enum's order.
var fileKinds = [C.LODE_NFILES]string{"db", "wal", "journal", "other"}

// statsVFS is one registered shim.
type statsVFS struct {
	v    *C.lode_vfs
	name string
}

// newStatsVFS registers a new shim. It returns nil when SQLite has no
// default VFS to wrap; the database then opens without one.
func newStatsVFS() *statsVFS {
	v := C.lode_vfs_new()
	if v == nil {
		return nil
	}
	return &statsVFS{v: v, name: C.GoString(C.lode_vfs_name(v))}
}

// close unregisters the shim; connections already open keep working.
func (s *statsVFS) close() { C.lode_vfs_unregister(s.v) }

// read returns the shim's counters.
func (s *statsVFS) read() FileStats {
	var cs C.lode_stats
	C.lode_vfs_read(s.v, &cs)
	fs := FileStats{Sync: map[string]Histogram{}, Checkpoints: fromC(&cs.checkpoint),
		BusySleeps: uint64(cs.sleeps), BusySleepSeconds: float64(cs.sleep_ns) / 1e9}
	for i, k := range fileKinds {
		fs.Sync[k] = fromC(&cs.sync[i])
	}
	return fs
}

func fromC(h *C.lode_hist) Histogram {
	out := Histogram{Bounds: make([]float64, len(durationBounds)), Counts: make([]uint64, len(durationBounds)+1),
		Count: uint64(h.count), Sum: float64(h.sum_ns) / 1e9}
	for i, b := range durationBounds {
		out.Bounds[i] = float64(b) / 1e9
	}
	for i := range out.Counts {
		out.Counts[i] = uint64(h.buckets[i])
	}
	return out
}
