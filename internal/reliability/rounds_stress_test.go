//go:build stress

package reliability_test

const crashRounds = 100

const reloadRounds = 20
