package server

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"lode/internal/query"
)

// Suggested facets cost one query per column and facet type (about twenty
// on a typical table), far more than the page itself. They only advise the
// reader, so a result a few seconds old is as good as a fresh one: the
// server remembers, per table and filter, which suggestions were accepted.
const (
	suggestCacheTTL  = 10 * time.Second
	suggestCacheSize = 1024 // entries; the map is emptied when full
)

// suggestCache maps a filtered table (database, count SQL and arguments,
// which hold every filter, and the facets already requested, which are
// never candidates) to the accepted suggestions. Safe for concurrent use;
// the zero value is ready.
type suggestCache struct {
	mu      sync.Mutex
	entries map[string]suggestEntry
}

type suggestEntry struct {
	at       time.Time
	accepted []query.FacetSuggestion
}

func suggestKey(db string, sel *query.Select) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\x00%s\x00%#v", db, sel.CountSQL, sel.CountArgs)
	for _, f := range sel.Facets {
		b.WriteString("\x00" + f.Type + ":" + f.Column)
	}
	return b.String()
}

// get returns the accepted suggestions for key if they are recent.
func (c *suggestCache) get(key string, now time.Time) ([]query.FacetSuggestion, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if !ok || now.Sub(e.at) > suggestCacheTTL {
		return nil, false
	}
	return e.accepted, true
}

func (c *suggestCache) put(key string, accepted []query.FacetSuggestion, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil || len(c.entries) >= suggestCacheSize {
		c.entries = map[string]suggestEntry{}
	}
	c.entries[key] = suggestEntry{at: now, accepted: accepted}
}
