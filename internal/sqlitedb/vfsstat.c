// The counting VFS shim declared in vfsstat.h.
//
// A file opened through the shim is a lode_file followed by the default
// VFS's own file object; every method forwards to that object. Counters
// are updated with relaxed atomic adds: connections of one database run on
// several threads at once, and the counters only need to be exact, not
// ordered.

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "vfsstat.h"

#define SQLITE_OK 0
#define SQLITE_OPEN_MAIN_DB 0x00000100
#define SQLITE_OPEN_MAIN_JOURNAL 0x00000800
#define SQLITE_OPEN_WAL 0x00080000
#define SQLITE_SHM_UNLOCK 1
#define SQLITE_SHM_LOCK 2
#define SQLITE_SHM_EXCLUSIVE 8
// WAL_CKPT_LOCK in SQLite's wal.c: the shared-memory lock a checkpoint
// holds exclusively from start to end (every checkpoint, whatever its mode,
// and the one a closing connection runs).
#define LODE_CKPT_LOCK 1

// The same bounds as Go's durationBounds (stats.go), which are read from
// here: 50 µs to 10 s.
const uint64_t lode_bounds_ns[LODE_NBOUNDS] = {
	50000, 100000, 250000, 500000,                 // 50 µs .. 0.5 ms
	1000000, 2500000, 5000000, 10000000,           // 1 ms .. 10 ms
	25000000, 50000000, 100000000, 250000000,      // 25 ms .. 250 ms
	500000000, 1000000000, 2500000000, 5000000000, // 0.5 s .. 5 s
	10000000000,                                   // 10 s
};

struct lode_vfs {
	sqlite3_vfs base; // first: SQLite sees a sqlite3_vfs
	sqlite3_vfs *real;
	lode_stats stats;
	char name[64];
};

typedef struct {
	sqlite3_file base; // first: SQLite sees a sqlite3_file
	lode_vfs *vfs;
	sqlite3_file *real; // the default VFS's file, right after this struct
	int kind;
	uint64_t ckpt_start; // monotonic ns when this connection took the checkpoint lock
} lode_file;

// The real file starts at a multiple of 16 bytes after the shim's header.
#define LODE_FILE_HDR ((sizeof(lode_file) + 15) & ~(size_t)15)

static uint64_t now_ns(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void observe(lode_hist *h, uint64_t ns) {
	int i = 0;
	while (i < LODE_NBOUNDS && ns > lode_bounds_ns[i]) {
		i++;
	}
	__atomic_fetch_add(&h->buckets[i], 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&h->sum_ns, ns, __ATOMIC_RELAXED);
	__atomic_fetch_add(&h->count, 1, __ATOMIC_RELAXED);
}

static void read_hist(const lode_hist *h, lode_hist *out) {
	for (int i = 0; i < LODE_NBUCKETS; i++) {
		out->buckets[i] = __atomic_load_n(&h->buckets[i], __ATOMIC_RELAXED);
	}
	out->sum_ns = __atomic_load_n(&h->sum_ns, __ATOMIC_RELAXED);
	out->count = __atomic_load_n(&h->count, __ATOMIC_RELAXED);
}

#define REAL(f) (((lode_file *)(f))->real)
#define RM(f) (REAL(f)->pMethods)

// ---- file methods: forward, timing xSync and the checkpoint lock ----

static int f_close(sqlite3_file *f) { return RM(f)->xClose(REAL(f)); }
static int f_read(sqlite3_file *f, void *b, int n, sqlite3_int64 o) { return RM(f)->xRead(REAL(f), b, n, o); }
static int f_write(sqlite3_file *f, const void *b, int n, sqlite3_int64 o) { return RM(f)->xWrite(REAL(f), b, n, o); }
static int f_truncate(sqlite3_file *f, sqlite3_int64 s) { return RM(f)->xTruncate(REAL(f), s); }
static int f_size(sqlite3_file *f, sqlite3_int64 *s) { return RM(f)->xFileSize(REAL(f), s); }
static int f_lock(sqlite3_file *f, int l) { return RM(f)->xLock(REAL(f), l); }
static int f_unlock(sqlite3_file *f, int l) { return RM(f)->xUnlock(REAL(f), l); }
static int f_reserved(sqlite3_file *f, int *r) { return RM(f)->xCheckReservedLock(REAL(f), r); }
static int f_fcntl(sqlite3_file *f, int op, void *a) { return RM(f)->xFileControl(REAL(f), op, a); }
static int f_sector(sqlite3_file *f) { return RM(f)->xSectorSize(REAL(f)); }
static int f_devchar(sqlite3_file *f) { return RM(f)->xDeviceCharacteristics(REAL(f)); }
static int f_shmmap(sqlite3_file *f, int pg, int sz, int ext, void volatile **pp) {
	return RM(f)->xShmMap(REAL(f), pg, sz, ext, pp);
}
static void f_shmbarrier(sqlite3_file *f) { RM(f)->xShmBarrier(REAL(f)); }
static int f_shmunmap(sqlite3_file *f, int del) { return RM(f)->xShmUnmap(REAL(f), del); }
static int f_fetch(sqlite3_file *f, sqlite3_int64 o, int n, void **pp) { return RM(f)->xFetch(REAL(f), o, n, pp); }
static int f_unfetch(sqlite3_file *f, sqlite3_int64 o, void *p) { return RM(f)->xUnfetch(REAL(f), o, p); }

static int f_sync(sqlite3_file *f, int flags) {
	lode_file *p = (lode_file *)f;
	uint64_t t = now_ns();
	int rc = RM(f)->xSync(REAL(f), flags);
	observe(&p->vfs->stats.sync[p->kind], now_ns() - t);
	return rc;
}

static int f_shmlock(sqlite3_file *f, int ofst, int n, int flags) {
	lode_file *p = (lode_file *)f;
	int rc = RM(f)->xShmLock(REAL(f), ofst, n, flags);
	if (ofst == LODE_CKPT_LOCK && n == 1 && rc == SQLITE_OK) {
		if (flags == (SQLITE_SHM_LOCK | SQLITE_SHM_EXCLUSIVE)) {
			p->ckpt_start = now_ns();
		} else if (flags == (SQLITE_SHM_UNLOCK | SQLITE_SHM_EXCLUSIVE) && p->ckpt_start != 0) {
			observe(&p->vfs->stats.checkpoint, now_ns() - p->ckpt_start);
			p->ckpt_start = 0;
		}
	}
	return rc;
}

// One method table per io_methods version, so SQLite sees exactly the
// methods the real file has (WAL needs version 2's shared memory).
static const sqlite3_io_methods methods_v1 = {1, f_close, f_read, f_write, f_truncate, f_sync, f_size, f_lock,
	f_unlock, f_reserved, f_fcntl, f_sector, f_devchar, 0, 0, 0, 0, 0, 0};
static const sqlite3_io_methods methods_v2 = {2, f_close, f_read, f_write, f_truncate, f_sync, f_size, f_lock,
	f_unlock, f_reserved, f_fcntl, f_sector, f_devchar, f_shmmap, f_shmlock, f_shmbarrier, f_shmunmap, 0, 0};
static const sqlite3_io_methods methods_v3 = {3, f_close, f_read, f_write, f_truncate, f_sync, f_size, f_lock,
	f_unlock, f_reserved, f_fcntl, f_sector, f_devchar, f_shmmap, f_shmlock, f_shmbarrier, f_shmunmap, f_fetch,
	f_unfetch};

// ---- VFS methods: forward to the real VFS ----

#define RV(v) (((lode_vfs *)(v))->real)

static int v_open(sqlite3_vfs *vfs, sqlite3_filename name, sqlite3_file *f, int flags, int *out) {
	lode_vfs *v = (lode_vfs *)vfs;
	lode_file *p = (lode_file *)f;
	p->vfs = v;
	p->real = (sqlite3_file *)((char *)f + LODE_FILE_HDR);
	p->real->pMethods = 0;
	p->ckpt_start = 0;
	if (flags & SQLITE_OPEN_MAIN_DB) {
		p->kind = LODE_FILE_DB;
	} else if (flags & SQLITE_OPEN_WAL) {
		p->kind = LODE_FILE_WAL;
	} else if (flags & SQLITE_OPEN_MAIN_JOURNAL) {
		p->kind = LODE_FILE_JOURNAL;
	} else {
		p->kind = LODE_FILE_OTHER;
	}
	int rc = v->real->xOpen(v->real, name, p->real, flags, out);
	const sqlite3_io_methods *m = p->real->pMethods;
	if (m == 0) {
		p->base.pMethods = 0;
	} else if (m->iVersion >= 3) {
		p->base.pMethods = &methods_v3;
	} else if (m->iVersion == 2) {
		p->base.pMethods = &methods_v2;
	} else {
		p->base.pMethods = &methods_v1;
	}
	return rc;
}

static int v_delete(sqlite3_vfs *v, const char *n, int d) { return RV(v)->xDelete(RV(v), n, d); }
static int v_access(sqlite3_vfs *v, const char *n, int fl, int *r) { return RV(v)->xAccess(RV(v), n, fl, r); }
static int v_fullpath(sqlite3_vfs *v, const char *n, int no, char *o) { return RV(v)->xFullPathname(RV(v), n, no, o); }
static void *v_dlopen(sqlite3_vfs *v, const char *n) { return RV(v)->xDlOpen(RV(v), n); }
static void v_dlerror(sqlite3_vfs *v, int n, char *m) { RV(v)->xDlError(RV(v), n, m); }
static void (*v_dlsym(sqlite3_vfs *v, void *h, const char *s))(void) { return RV(v)->xDlSym(RV(v), h, s); }
static void v_dlclose(sqlite3_vfs *v, void *h) { RV(v)->xDlClose(RV(v), h); }
static int v_random(sqlite3_vfs *v, int n, char *o) { return RV(v)->xRandomness(RV(v), n, o); }
static int v_time(sqlite3_vfs *v, double *t) { return RV(v)->xCurrentTime(RV(v), t); }
static int v_lasterr(sqlite3_vfs *v, int n, char *o) { return RV(v)->xGetLastError(RV(v), n, o); }
static int v_time64(sqlite3_vfs *v, sqlite3_int64 *t) { return RV(v)->xCurrentTimeInt64(RV(v), t); }
static int v_setsys(sqlite3_vfs *v, const char *n, sqlite3_syscall_ptr p) { return RV(v)->xSetSystemCall(RV(v), n, p); }
static sqlite3_syscall_ptr v_getsys(sqlite3_vfs *v, const char *n) { return RV(v)->xGetSystemCall(RV(v), n); }
static const char *v_nextsys(sqlite3_vfs *v, const char *n) { return RV(v)->xNextSystemCall(RV(v), n); }

// SQLite's default busy handler sleeps through the connection's VFS
// between attempts to take a lock; so does a WAL reader that retries.
static int v_sleep(sqlite3_vfs *vfs, int us) {
	lode_vfs *v = (lode_vfs *)vfs;
	uint64_t t = now_ns();
	int rc = v->real->xSleep(v->real, us);
	__atomic_fetch_add(&v->stats.sleep_ns, now_ns() - t, __ATOMIC_RELAXED);
	__atomic_fetch_add(&v->stats.sleeps, 1, __ATOMIC_RELAXED);
	return rc;
}

lode_vfs *lode_vfs_new(void) {
	sqlite3_vfs *real = sqlite3_vfs_find(0);
	if (real == 0 || real->iVersion < 3) {
		return 0;
	}
	lode_vfs *v = calloc(1, sizeof(lode_vfs));
	if (v == 0) {
		return 0;
	}
	// Named after its own address: unique for the life of the process,
	// since shims are never freed.
	snprintf(v->name, sizeof(v->name), "lode-%p", (void *)v);
	v->real = real;
	sqlite3_vfs *b = &v->base;
	b->iVersion = 3;
	b->szOsFile = (int)LODE_FILE_HDR + real->szOsFile;
	b->mxPathname = real->mxPathname;
	b->zName = v->name;
	b->xOpen = v_open;
	b->xDelete = v_delete;
	b->xAccess = v_access;
	b->xFullPathname = v_fullpath;
	b->xDlOpen = v_dlopen;
	b->xDlError = v_dlerror;
	b->xDlSym = v_dlsym;
	b->xDlClose = v_dlclose;
	b->xRandomness = v_random;
	b->xSleep = v_sleep;
	b->xCurrentTime = v_time;
	b->xGetLastError = v_lasterr;
	b->xCurrentTimeInt64 = v_time64;
	b->xSetSystemCall = v_setsys;
	b->xGetSystemCall = v_getsys;
	b->xNextSystemCall = v_nextsys;
	if (sqlite3_vfs_register(b, 0) != SQLITE_OK) {
		free(v);
		return 0;
	}
	return v;
}

void lode_vfs_unregister(lode_vfs *v) { sqlite3_vfs_unregister(&v->base); }

const char *lode_vfs_name(lode_vfs *v) { return v->name; }

void lode_vfs_read(lode_vfs *v, lode_stats *out) {
	for (int i = 0; i < LODE_NFILES; i++) {
		read_hist(&v->stats.sync[i], &out->sync[i]);
	}
	read_hist(&v->stats.checkpoint, &out->checkpoint);
	out->sleeps = __atomic_load_n(&v->stats.sleeps, __ATOMIC_RELAXED);
	out->sleep_ns = __atomic_load_n(&v->stats.sleep_ns, __ATOMIC_RELAXED);
}
