//go:build !stress

package reliability_test

// crashRounds is how many kill rounds TestCrashDurability runs per
// journal/synchronous combination; -tags stress runs 100.
const crashRounds = 5

// reloadRounds is how many SIGHUP reloads and worker SIGKILLs
// TestReloadUnderLoad does; -tags stress does 20 of each.
const reloadRounds = 3
