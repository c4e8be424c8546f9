package bench

import (
	"fmt"
	"slices"
)

// Workloads are the built-in workloads as requests to lode (and to any
// Datasette-compatible target) over the demo database. URLs and bodies are
// lode load templates: {{randInt A B}} draws a fresh id per request.
//
//   - read: a table page with a filter (an indexed author_id lookup, 20 rows)
//   - point: one row as JSON by primary key
//   - write: insert one row (the study's POST /write/)
//   - counter: update one hot row, the worst case for lock contention
//   - txn: the read-then-write transaction (SELECT then UPDATE in one
//     transaction) run as a canned write script; under --txlock deferred it
//     must upgrade its read lock, which is what fails under concurrency
//   - mixed: 90% read, 10% write
var Workloads = map[string][]RequestSpec{
	"read":    {readRequest},
	"point":   {{Name: "point", URL: fmt.Sprintf("/%s/posts/{{randInt 1 %d}}.json", DemoDBName, DemoPosts)}},
	"write":   {writeRequest},
	"counter": {{Name: "counter", Method: "POST", URL: "/" + DemoDBName + "/counters/1/-/update", Body: `{"update": {"name": "hot-{{randInt 1 1000000}}"}}`}},
	"txn":     {{Name: "txn", Method: "POST", URL: "/" + DemoDBName + "/" + TxnQueryName, Body: fmt.Sprintf(`{"id": {{randInt 1 %d}}}`, DemoAccounts)}},
	"mixed":   {withWeight(readRequest, 9), withWeight(writeRequest, 1)},
}

// TxnQueryName is the canned write script the txn workload posts to; the
// lode target's generated config (target.go) defines it.
const TxnQueryName = "transfer"

var (
	readRequest  = RequestSpec{Name: "read", URL: fmt.Sprintf("/%s/posts.json?author_id={{randInt 1 %d}}&_size=20", DemoDBName, DemoAuthors)}
	writeRequest = RequestSpec{Name: "write", Method: "POST", URL: "/" + DemoDBName + "/events/-/insert",
		Body: fmt.Sprintf(`{"row": {"post_id": {{randInt 1 %d}}, "kind": "view", "payload": "bench"}}`, DemoPosts)}
)

func withWeight(r RequestSpec, w int) RequestSpec {
	r.Weight = w
	return r
}

// WorkloadNames returns the built-in workload names, sorted.
func WorkloadNames() []string {
	names := make([]string, 0, len(Workloads))
	for n := range Workloads {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// writes reports whether a workload writes (and so can hit lock errors).
func writes(workload string) bool {
	return workload != "read" && workload != "point"
}
