package main

import (
	"os"
	"strings"
	"testing"

	"lode/internal/report"
)

// checkServerEvidence checks that a bench run against real lode servers
// read their /-/metrics: the write cell's batch sizes add up to its
// requests, and the text and HTML reports show them; the read cell has no
// write transactions to show.
func checkServerEvidence(t *testing.T, res *report.Results, stdout, html string) {
	t.Helper()
	for _, c := range res.Cells {
		s := c.Server
		switch c.Workload {
		case "write":
			if s == nil || s.BatchSizes.Count == 0 || s.Workers != 1 {
				t.Fatalf("write cell %d: server stats %+v; want the server's batches from /-/metrics", c.ID, s)
			}
			// Every measured write is in exactly one transaction.
			if s.BatchSizes.Sum != float64(c.Requests+c.Unfinished) || s.BatchSizes.Count > uint64(c.Requests+c.Unfinished) {
				t.Errorf("write cell %d: %d transactions for %.0f writes; want the cell's %d requests",
					c.ID, s.BatchSizes.Count, s.BatchSizes.Sum, c.Requests)
			}
			if s.CommitMS.Count != s.BatchSizes.Count || s.CommitMS.Sum <= 0 || s.FsyncMS.Count == 0 {
				t.Errorf("write cell %d: commits %+v, fsyncs %d; want one timed COMMIT per transaction and fsyncs (synchronous=full)",
					c.ID, s.CommitMS, s.FsyncMS.Count)
			}
			if !strings.Contains(stdout, "Inside the server") || !strings.Contains(stdout, "batches by size: "+s.BatchSizes.Distribution(true)) {
				t.Errorf("bench output lacks cell %d's batch sizes (%s):\n%s", c.ID, s.BatchSizes.Distribution(true), stdout)
			}
		case "read":
			if s != nil && s.BatchSizes.Count != 0 {
				t.Errorf("read cell %d has write transactions: %+v", c.ID, s)
			}
		}
	}
	page, err := os.ReadFile(html)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(page), "<h2>Inside the server</h2>") || !strings.Contains(string(page), "batches by size") {
		t.Errorf("index.html lacks the server evidence section")
	}
}
