//go:build !cgo

package sqlitedb

// tuneMalloc is a no-op without cgo (SQLite needs cgo anyway).
func tuneMalloc() bool { return false }
