package server

import (
	"fmt"
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
// which hold every filter) to the accepted suggestions. Safe for
// concurrent use; the zero value is ready.
type suggestCache struct {
	mu      sync.Mutex
	entries map[string]suggestEntry
}

type suggestEntry struct {
	at       time.Time
	accepted map[[2]string]bool // {type, column}
}

func suggestKey(db string, sel *query.Select) string {
	return fmt.Sprintf("%s\x00%s\x00%#v", db, sel.CountSQL, sel.CountArgs)
}

// get returns the accepted {type, column} pairs for key if they are recent.
func (c *suggestCache) get(key string, now time.Time) (map[[2]string]bool, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if !ok || now.Sub(e.at) > suggestCacheTTL {
		return nil, false
	}
	return e.accepted, true
}

func (c *suggestCache) put(key string, accepted map[[2]string]bool, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil || len(c.entries) >= suggestCacheSize {
		c.entries = map[string]suggestEntry{}
	}
	c.entries[key] = suggestEntry{at: now, accepted: accepted}
}
