package server_test

import (
	"fmt"
	"strings"
	"testing"
)

// TestSuggestedFacetsCachedAndFirstPageOnly shows that a repeated table
// page (answered from the suggestion cache) suggests the same facets as
// the first, that a different filter gets its own answer, and that, as in
// Datasette, pages after the first suggest none.
func TestSuggestedFacetsCachedAndFirstPageOnly(t *testing.T) {
	base, _ := newTestServer(t, nil)
	suggested := func(path string) string {
		t.Helper()
		m := getJSON(t, base, path, 200)
		return fmt.Sprint(m["suggested_facets"])
	}
	first := suggested("/fixtures/items.json?_size=5&_extra=suggested_facets")
	if first == "[]" || first == "<nil>" {
		t.Fatalf("no suggested facets on items: %s", first)
	}
	if again := suggested("/fixtures/items.json?_size=5&_extra=suggested_facets"); again != first {
		t.Errorf("cached suggestions = %s; want %s", again, first)
	}
	// A page that facets by a suggested column does not suggest it; the
	// same filter without the facet, asked next, must still suggest it
	// (the cache must not hand it the faceted page's answer).
	if !strings.Contains(first, "category") {
		t.Fatalf("category not suggested on items: %s", first)
	}
	const filter = "/fixtures/items.json?_size=5&price__gte=0&_extra=suggested_facets"
	if faceted := suggested(filter + "&_facet=category"); strings.Contains(faceted, "name:category") {
		t.Errorf("suggestions with _facet=category = %s; want category left out", faceted)
	}
	if plain := suggested(filter); !strings.Contains(plain, "name:category") {
		t.Errorf("suggestions after a faceted page with the same filter = %s; want category among them", plain)
	}
	filtered := suggested("/fixtures/items.json?_size=5&category=nope&_extra=suggested_facets")
	if filtered == first {
		t.Errorf("suggestions for a filter matching no rows = %s; want them computed anew", filtered)
	}
	m := getJSON(t, base, "/fixtures/items.json?_size=5", 200)
	next, _ := m["next"].(string)
	if next == "" {
		t.Fatal("no next token on items")
	}
	if later := suggested("/fixtures/items.json?_size=5&_extra=suggested_facets&_next=" + next); later != "[]" {
		t.Errorf("suggested facets on page 2 = %s; want []", later)
	}
}
