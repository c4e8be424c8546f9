package server

import (
	"crypto/subtle"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"lode/internal/auth"
)

func msDuration(ms int) time.Duration { return time.Duration(ms) * time.Millisecond }

// handleAuthToken signs the browser in as root with the one-time token
// that lode serve --root printed: it sets a signed actor cookie and
// redirects to the index.
func (a *WriteAPI) handleAuthToken(w http.ResponseWriter, r *http.Request) {
	tok := r.URL.Query().Get("token")
	if a.cfg.RootToken == "" || subtle.ConstantTimeCompare([]byte(tok), []byte(a.cfg.RootToken)) != 1 {
		a.fail(w, r, forbidden("Invalid token"))
		return
	}
	if !a.claimRootToken() {
		a.fail(w, r, forbidden("This sign-in link was already used; restart lode serve --root for a new one, or use lode token create --actor root"))
		return
	}
	cookie, err := auth.CreateToken(a.cfg.Secret, auth.TokenOptions{Actor: "root", ExpiresAfter: 30 * 24 * time.Hour, Now: a.cfg.Now()})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: actorCookie, Value: cookie, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, "/", http.StatusFound)
}

// claimRootToken reports whether this is the first use of the root
// sign-in token: in this process, and across worker processes when
// RootTokenClaim names a file that only the first claimer can create.
func (a *WriteAPI) claimRootToken() bool {
	if a.rootUsed.Swap(true) {
		return false
	}
	if a.cfg.RootTokenClaim == "" {
		return true
	}
	f, err := os.OpenFile(a.cfg.RootTokenClaim, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return false
	}
	f.Close()
	return true
}

// handleActor serves /-/actor.json: {"actor": null} or the actor.
func (a *WriteAPI) handleActor(w http.ResponseWriter, r *http.Request) {
	actor, _, err := a.requestActor(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	var v any
	if actor != nil {
		v = actor
	}
	writeJSONStatus(w, http.StatusOK, map[string]any{"actor": v})
}

// handleRead checks the view permissions of a read request (view-instance,
// view-database, view-table, execute-sql for ?sql= and /DB/-/query) and
// passes it to the read Server.
func (a *WriteAPI) handleRead(w http.ResponseWriter, r *http.Request) {
	actor, restr, err := a.requestActor(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	deny := func(what string) {
		a.fail(w, r, forbidden("You do not have permission to view this "+what))
	}
	if !a.checker.Allowed(actor, restr, auth.ViewInstance, "", "") {
		deny("instance")
		return
	}
	segs := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if len(segs) > 0 && segs[0] != "" && segs[0] != "-" {
		seg, _ := splitFormat(segs[0])
		dbName, err := decodeName(seg)
		if err == nil && a.s.DB(dbName) != nil {
			if !a.checker.Allowed(actor, restr, auth.ViewDatabase, dbName, "") {
				deny("database")
				return
			}
			isQuery := len(segs) > 2 && segs[1] == "-" && strings.HasPrefix(segs[2], "query")
			if (isQuery || hasSQLParam(r.URL.RawQuery)) && !a.checker.Allowed(actor, restr, auth.ExecuteSQL, dbName, "") {
				a.fail(w, r, forbidden("You do not have permission to execute SQL"))
				return
			}
			if len(segs) > 1 && segs[1] != "-" {
				tseg, _ := splitFormat(segs[1])
				if table, err := decodeName(tseg); err == nil && !a.checker.Allowed(actor, restr, auth.ViewTable, dbName, table) {
					deny("table")
					return
				}
			}
		}
	}
	a.s.route(w, r)
}

// hasSQLParam reports whether a query string has a sql parameter. Most
// requests have neither "sql" nor an escape in it, and need no parsing.
func hasSQLParam(rawQuery string) bool {
	if !strings.Contains(rawQuery, "sql") && !strings.Contains(rawQuery, "%") {
		return false
	}
	q, _ := url.ParseQuery(rawQuery)
	return q.Has("sql")
}
