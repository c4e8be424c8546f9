package server

import (
	"crypto/subtle"
	"net/http"
	"os"
	"time"

	"lode/internal/auth"
)

func msDuration(ms int) time.Duration { return time.Duration(ms) * time.Millisecond }

// handleAuthToken signs the browser in as root with the one-time token
// that lode serve --root printed: it sets a signed actor cookie and
// redirects to the index.
func (a *WriteAPI) handleAuthToken(w http.ResponseWriter, r *http.Request, rt *route) {
	tok := rt.params.Get("token")
	if a.cfg.RootToken == "" || subtle.ConstantTimeCompare([]byte(tok), []byte(a.cfg.RootToken)) != 1 {
		a.s.fail(w, r, rt, forbidden("Invalid token"))
		return
	}
	if !a.claimRootToken() {
		a.s.fail(w, r, rt, forbidden("This sign-in link was already used; restart lode serve --root for a new one, or use lode token create --actor root"))
		return
	}
	cookie, err := auth.CreateToken(a.cfg.Secret, auth.TokenOptions{Actor: "root", ExpiresAfter: 30 * 24 * time.Hour, Now: a.cfg.Now()})
	if err != nil {
		a.s.fail(w, r, rt, err)
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
