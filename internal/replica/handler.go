package replica

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"time"
)

// StatusEndpoint is the path of the replication status.
const StatusEndpoint = "/-/replication.json"

// Handler sits in front of lode serve's handler on a node that replicates.
// StatusHandler answers StatusEndpoint from the child's status file (so
// every worker process answers the same); lode serve mounts it behind its
// permission gate. On a replica, Handler sends writes — any
// request that is not GET, HEAD or OPTIONS — to the primary: proxied (the
// client gets the primary's answer; the default, because clients drop the
// Authorization header when a redirect changes the host) or redirected
// with 307 (the client repeats the request, body included, at the
// primary). Without a primary a replica refuses writes with 405. Everything
// else goes to Next.
type Handler struct {
	Next http.Handler
	cfg  ServeConfig

	statusPath string
	staleAfter time.Duration
	primary    *url.URL
	proxy      *httputil.ReverseProxy
}

// NewHandler wraps next for the node described by cfg (validated).
func NewHandler(next http.Handler, cfg ServeConfig) *Handler {
	h := &Handler{Next: next, cfg: cfg, statusPath: StatusPath(mustAbs(cfg.DBPath()))}
	interval := cfg.SyncInterval
	if cfg.Role() == "replica" {
		interval = cfg.FollowInterval
	}
	// The child writes its status at least every second and after each
	// change; three missed beats mean it is dead or stuck.
	h.staleAfter = 3*max(interval, statusEvery) + time.Second
	if cfg.Primary != "" {
		h.primary, _ = url.Parse(strings.TrimSuffix(cfg.Primary, "/"))
		if cfg.PrimaryMode == "proxy" {
			h.proxy = &httputil.ReverseProxy{
				Rewrite: func(pr *httputil.ProxyRequest) {
					pr.SetURL(h.primary)
					pr.SetXForwarded()
					// Keep the client's Host, so URLs in the primary's
					// answer (table_url, ...) point at the node it used.
					pr.Out.Host = pr.In.Host
				},
				Transport: &http.Transport{
					Proxy:                 nil,
					MaxIdleConnsPerHost:   64,
					IdleConnTimeout:       90 * time.Second,
					ResponseHeaderTimeout: 5 * time.Minute, // a batch may wait for the write lock
					TLSHandshakeTimeout:   10 * time.Second,
				},
				ModifyResponse: func(resp *http.Response) error {
					resp.Header.Set("X-Lode-Primary", h.primary.String())
					return nil
				},
				ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
					writeJSON(w, http.StatusBadGateway, map[string]any{"ok": false, "status": http.StatusBadGateway,
						"error": fmt.Sprintf("this replica forwards writes to the primary at %s, which did not answer: %v", h.primary, err)})
				},
			}
		}
	}
	return h
}

// StatusHandler answers StatusEndpoint (see serveStatus).
func (h *Handler) StatusHandler() http.Handler { return http.HandlerFunc(h.serveStatus) }

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.cfg.Role() != "replica" {
		h.Next.ServeHTTP(w, r)
		return
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		h.Next.ServeHTTP(w, r)
		return
	}
	switch {
	case h.proxy != nil:
		h.proxy.ServeHTTP(w, r)
	case h.primary != nil:
		loc := h.primary.String() + r.URL.RequestURI()
		w.Header().Set("Location", loc)
		writeJSON(w, http.StatusTemporaryRedirect, map[string]any{"ok": false, "status": http.StatusTemporaryRedirect,
			"error": "this node is a read-only replica: repeat the request at the primary", "location": loc})
	default:
		w.Header().Set("Allow", "GET, HEAD, OPTIONS")
		writeJSON(w, http.StatusMethodNotAllowed, map[string]any{"ok": false, "status": http.StatusMethodNotAllowed,
			"error": fmt.Sprintf("this node is a read-only replica of %s and forwards no writes (start it with --primary URL to forward them); send writes to the primary", Redact(h.cfg.Follow))})
	}
}

// serveStatus answers StatusEndpoint: the child's status plus its age.
// It is 200 with "ok": true while the child is ready, fresh and without
// an error, else 503 with "ok": false and the reason in "error" — usable
// as a readiness probe for a replica.
func (h *Handler) serveStatus(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		writeJSON(w, http.StatusMethodNotAllowed, map[string]any{"ok": false, "status": http.StatusMethodNotAllowed, "error": "Method not allowed: " + r.Method})
		return
	}
	st, err := ReadStatus(h.statusPath)
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"ok": false, "status": http.StatusServiceUnavailable, "role": h.cfg.Role(),
			"error": fmt.Sprintf("no replication status yet (%v): the %s has not started", err, childName(h.cfg.Role()))})
		return
	}
	age := time.Since(st.Updated)
	out := map[string]any{}
	b, _ := json.Marshal(st)
	_ = json.Unmarshal(b, &out)
	out["status_age_ms"] = age.Milliseconds()
	if st.LastSync != nil {
		out["last_sync_age_ms"] = time.Since(*st.LastSync).Milliseconds()
	}
	if h.cfg.Role() == "replica" {
		out["primary"] = nil
		if h.primary != nil {
			out["primary"] = h.primary.String()
			out["primary_mode"] = h.cfg.PrimaryMode
		}
	}
	problem := ""
	switch {
	case age > h.staleAfter:
		problem = fmt.Sprintf("the %s (pid %d) has not reported for %s", childName(st.Role), st.PID, age.Round(time.Millisecond))
	case !st.Ready && st.Error != "":
		problem = st.Error
	case !st.Ready:
		problem = fmt.Sprintf("the %s is starting", childName(st.Role))
	case st.Error != "":
		problem = st.Error
	}
	code := http.StatusOK
	out["ok"] = problem == ""
	if problem != "" {
		code = http.StatusServiceUnavailable
		out["error"] = problem
		out["status"] = code
	}
	writeJSON(w, code, out)
}

func childName(role string) string {
	if role == "replica" {
		return "follower"
	}
	return "replicator"
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
