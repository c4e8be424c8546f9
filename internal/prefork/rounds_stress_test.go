//go:build stress

package prefork_test

// soakRounds: see rounds.
const soakRounds = 20
