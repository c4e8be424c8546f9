//go:build !stress

package reliability_test

// crashRounds is how many kill rounds TestCrashDurability runs per
// journal/synchronous combination; -tags stress runs 100.
const crashRounds = 5

// reloadRounds is how many SIGHUP reloads and worker SIGKILLs
// TestReloadUnderLoad does; -tags stress does 20 of each.
const reloadRounds = 3

// abuseRounds is how often each client of TestAbusiveQueriesBoundedMemory
// runs every abusive query; -tags stress runs 5.
const abuseRounds = 1

// facetRows is the size of TestFacetBudget's 60-column table; -tags
// stress builds the 300,000 rows.
const facetRows = 20000
