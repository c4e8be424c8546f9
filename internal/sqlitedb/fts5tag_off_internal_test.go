//go:build !sqlite_fts5

package sqlitedb

const buildTagFTS5 = false
