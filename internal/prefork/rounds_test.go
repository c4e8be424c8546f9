//go:build !stress

package prefork_test

// soakRounds: see rounds. Run the 20 with: go test -race -tags 'sqlite_fts5 stress' ./internal/prefork/
const soakRounds = 5
