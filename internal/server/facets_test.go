package server_test

import "testing"

// TestFacetsSharingAColumn: a column facet and an array facet of the same
// column both appear in facet_results, under "tags" and "tags_2" as in
// Datasette, instead of the second replacing the first.
func TestFacetsSharingAColumn(t *testing.T) {
	base, _ := newTestServer(t, nil)
	m := getJSON(t, base, "/fixtures/items.json?_facet=tags&_facet_array=tags&_size=0", 200)
	results, _ := m["facet_results"].(map[string]any)["results"].(map[string]any)
	col, _ := results["tags"].(map[string]any)
	arr, _ := results["tags_2"].(map[string]any)
	if col["type"] != "column" || arr["type"] != "array" {
		t.Errorf("facet_results keys = %v; want tags (column) and tags_2 (array)", results)
	}
}
