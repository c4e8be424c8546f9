// A counting VFS shim: every database Lode opens gets its own VFS that
// forwards each call to SQLite's default VFS ("unix") and times the calls
// that tell how a database spends its time outside SQL: xSync (fsync, by
// file), the WAL checkpoint lock (how often and how long checkpoints run)
// and xSleep (the busy handler's sleeps while another connection holds a
// lock). See vfsstat.go.
//
// The declarations below are the parts of SQLite's public C interface the
// shim needs (sqlite3.h, "OS Interface Object" and "OS Interface Open File
// Handle"; stable ABI since SQLite 3.7). They are declared here because the
// header lives inside mattn/go-sqlite3's module, which a cgo package cannot
// include; the functions are resolved at link time against the SQLite that
// mattn/go-sqlite3 compiles into the binary.
#ifndef LODE_VFSSTAT_H
#define LODE_VFSSTAT_H

#include <stdint.h>

typedef long long int sqlite3_int64;
typedef struct sqlite3_file sqlite3_file;
typedef struct sqlite3_io_methods sqlite3_io_methods;
typedef struct sqlite3_vfs sqlite3_vfs;
typedef void (*sqlite3_syscall_ptr)(void);
typedef const char *sqlite3_filename;

struct sqlite3_file {
	const struct sqlite3_io_methods *pMethods;
};

struct sqlite3_io_methods {
	int iVersion;
	int (*xClose)(sqlite3_file *);
	int (*xRead)(sqlite3_file *, void *, int iAmt, sqlite3_int64 iOfst);
	int (*xWrite)(sqlite3_file *, const void *, int iAmt, sqlite3_int64 iOfst);
	int (*xTruncate)(sqlite3_file *, sqlite3_int64 size);
	int (*xSync)(sqlite3_file *, int flags);
	int (*xFileSize)(sqlite3_file *, sqlite3_int64 *pSize);
	int (*xLock)(sqlite3_file *, int);
	int (*xUnlock)(sqlite3_file *, int);
	int (*xCheckReservedLock)(sqlite3_file *, int *pResOut);
	int (*xFileControl)(sqlite3_file *, int op, void *pArg);
	int (*xSectorSize)(sqlite3_file *);
	int (*xDeviceCharacteristics)(sqlite3_file *);
	int (*xShmMap)(sqlite3_file *, int iPg, int pgsz, int, void volatile **);
	int (*xShmLock)(sqlite3_file *, int offset, int n, int flags);
	void (*xShmBarrier)(sqlite3_file *);
	int (*xShmUnmap)(sqlite3_file *, int deleteFlag);
	int (*xFetch)(sqlite3_file *, sqlite3_int64 iOfst, int iAmt, void **pp);
	int (*xUnfetch)(sqlite3_file *, sqlite3_int64 iOfst, void *p);
};

struct sqlite3_vfs {
	int iVersion;
	int szOsFile;
	int mxPathname;
	sqlite3_vfs *pNext;
	const char *zName;
	void *pAppData;
	int (*xOpen)(sqlite3_vfs *, sqlite3_filename zName, sqlite3_file *, int flags, int *pOutFlags);
	int (*xDelete)(sqlite3_vfs *, const char *zName, int syncDir);
	int (*xAccess)(sqlite3_vfs *, const char *zName, int flags, int *pResOut);
	int (*xFullPathname)(sqlite3_vfs *, const char *zName, int nOut, char *zOut);
	void *(*xDlOpen)(sqlite3_vfs *, const char *zFilename);
	void (*xDlError)(sqlite3_vfs *, int nByte, char *zErrMsg);
	void (*(*xDlSym)(sqlite3_vfs *, void *, const char *zSymbol))(void);
	void (*xDlClose)(sqlite3_vfs *, void *);
	int (*xRandomness)(sqlite3_vfs *, int nByte, char *zOut);
	int (*xSleep)(sqlite3_vfs *, int microseconds);
	int (*xCurrentTime)(sqlite3_vfs *, double *);
	int (*xGetLastError)(sqlite3_vfs *, int, char *);
	int (*xCurrentTimeInt64)(sqlite3_vfs *, sqlite3_int64 *);
	int (*xSetSystemCall)(sqlite3_vfs *, const char *zName, sqlite3_syscall_ptr);
	sqlite3_syscall_ptr (*xGetSystemCall)(sqlite3_vfs *, const char *zName);
	const char *(*xNextSystemCall)(sqlite3_vfs *, const char *zName);
};

sqlite3_vfs *sqlite3_vfs_find(const char *zVfsName);
int sqlite3_vfs_register(sqlite3_vfs *, int makeDflt);
int sqlite3_vfs_unregister(sqlite3_vfs *);

// Histogram buckets: upper bounds in nanoseconds (lode_bounds_ns), the
// last bucket counts what lies above them all. Counts are per bucket,
// not cumulative.
#define LODE_NBOUNDS 17
#define LODE_NBUCKETS (LODE_NBOUNDS + 1)
extern const uint64_t lode_bounds_ns[LODE_NBOUNDS];

typedef struct {
	uint64_t count;
	uint64_t sum_ns;
	uint64_t buckets[LODE_NBUCKETS];
} lode_hist;

// File kinds xSync is counted by.
enum { LODE_FILE_DB, LODE_FILE_WAL, LODE_FILE_JOURNAL, LODE_FILE_OTHER, LODE_NFILES };

typedef struct {
	lode_hist sync[LODE_NFILES]; // xSync calls by file kind
	lode_hist checkpoint;        // WAL checkpoints: checkpoint lock held
	uint64_t sleeps;             // xSleep calls (the busy handler's sleeps)
	uint64_t sleep_ns;           // time spent in them
} lode_stats;

typedef struct lode_vfs lode_vfs;

// lode_vfs_new registers a new shim over the default VFS and returns it,
// or NULL (no default VFS, out of memory, registration failed).
lode_vfs *lode_vfs_new(void);
// lode_vfs_name is the name to open databases with (URI parameter vfs=).
const char *lode_vfs_name(lode_vfs *v);
// lode_vfs_unregister removes the shim from SQLite's list. Its memory is
// never freed: connections opened through it may still be closing.
void lode_vfs_unregister(lode_vfs *v);
// lode_vfs_read copies the counters (each field read atomically).
void lode_vfs_read(lode_vfs *v, lode_stats *out);

#endif
