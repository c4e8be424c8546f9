//go:build stress

package replica_test

// The run: 5,000 inserts at a steady rate while two replicas serve
// reads (go test -tags 'sqlite_fts5 stress' ./internal/replica/).
const (
	clusterInserts = 5000
	clusterRate    = 250.0 // inserts per second
)
