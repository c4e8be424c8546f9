//go:build stress

package reliability_test

const crashRounds = 100

const reloadRounds = 20

const abuseRounds = 5

const facetRows = 300000
