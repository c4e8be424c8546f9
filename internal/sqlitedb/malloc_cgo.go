//go:build cgo

package sqlitedb

/*
#include <stdlib.h>
#ifdef __GLIBC__
#include <malloc.h>
static int lode_tune_malloc(int mmap_threshold, int trim_threshold) {
	return mallopt(M_MMAP_THRESHOLD, mmap_threshold) == 1 && mallopt(M_TRIM_THRESHOLD, trim_threshold) == 1;
}
#else
static int lode_tune_malloc(int mmap_threshold, int trim_threshold) { return 0; }
#endif
*/
import "C"

// Thresholds of the C allocator that SQLite allocates from (see
// tuneMalloc).
const (
	mallocMmapThreshold = 1 << 20
	mallocTrimThreshold = 4 << 20
)

// tuneMalloc makes glibc's malloc give freed memory back to the system.
// SQLite allocates with malloc. glibc serves a request above its mmap
// threshold with its own mapping, returned at once on free, but after
// such a free it raises the threshold to that size (up to 32 MiB) and the
// trim threshold to twice that: from then on a 30 MB value comes from a
// per-thread arena, and up to 64 MiB of freed memory per arena stays in
// the process. Under 8 parallel queries that build large values that
// doubled the peak RSS (measured: 517-615 MiB against 282-310 MiB). Fixed
// thresholds turn the adjustment off. It reports whether the C library
// is glibc and took the settings.
func tuneMalloc() bool {
	return C.lode_tune_malloc(C.int(mallocMmapThreshold), C.int(mallocTrimThreshold)) == 1
}
