//go:build !stress

package replica_test

// The default run inserts 500 rows; -tags stress runs the 5,000.
const (
	clusterInserts = 500
	clusterRate    = 250.0 // inserts per second
)
