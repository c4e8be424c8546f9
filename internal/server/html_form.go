package server

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"net/http"

	"lode/internal/query"
	"lode/internal/web"
)

// htmlFilterOps are the filter builder's operators, from the query
// package's list (Datasette's order and labels). Operators that take no
// value carry it in the option, "isnull__1", as in Datasette's form.
var htmlFilterOps = func() []web.Option {
	var out []web.Option
	for _, l := range query.Lookups() {
		out = append(out, web.Option{Value: htmlOpValue(l.Key), Label: l.Display})
	}
	return out
}()

// htmlOpValue is the filter builder's option value of operator key.
func htmlOpValue(key string) string {
	for _, l := range query.Lookups() {
		if l.Key == key && l.NoArgument {
			return key + "__1"
		}
	}
	return key
}

// csrfCookie holds the CSRF token of the HTML write forms; the form
// repeats it in web.CSRFField (double-submit cookie, the scheme of
// Datasette's asgi-csrf). A cross-site page can make a browser send the
// cookie but cannot read it, so it cannot fill in the field; SameSite=Lax
// keeps the cookie off cross-site POSTs as well, and the front door refuses
// cross-site POSTs by their Sec-Fetch-Site and Origin headers. The token is
// signed with the server secret (random half, HMAC half), so a cookie
// planted from a sibling host with a value of the attacker's choosing is
// refused too.
const csrfCookie = "lode_csrftoken"

// errCSRF is the message of a form POST whose token is missing or wrong.
var errCSRF = errors.New("form token missing or wrong (CSRF check failed): reload the page and submit the form again")

// csrfToken returns the request's CSRF token, creating one (and its
// cookie) when the browser has none with a valid signature.
func (s *Server) csrfToken(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(csrfCookie); err == nil && s.validCSRF(c.Value) {
		return c.Value
	}
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+).
	tok := hex.EncodeToString(b[:]) + s.csrfMAC(b[:])
	http.SetCookie(w, &http.Cookie{
		Name: csrfCookie, Value: tok, Path: "/",
		HttpOnly: true, SameSite: http.SameSiteLaxMode,
	})
	return tok
}

// csrfMAC is the signature half of a token: 16 bytes of
// HMAC-SHA256(secret, "lode-csrf" || random half), in hex.
func (s *Server) csrfMAC(random []byte) string {
	m := hmac.New(sha256.New, s.secret)
	m.Write([]byte("lode-csrf\x00"))
	m.Write(random)
	return hex.EncodeToString(m.Sum(nil)[:16])
}

// validCSRF reports whether tok is a token this server signed.
func (s *Server) validCSRF(tok string) bool {
	if len(tok) != 64 || len(s.secret) == 0 {
		return false
	}
	random, err := hex.DecodeString(tok[:32])
	if err != nil {
		return false
	}
	return hmac.Equal([]byte(tok[32:]), []byte(s.csrfMAC(random)))
}

// checkCSRF reports errCSRF unless the cookie holds a signed token and the
// parsed form repeats it.
func (s *Server) checkCSRF(r *http.Request) error {
	c, err := r.Cookie(csrfCookie)
	if err != nil || !s.validCSRF(c.Value) {
		return errCSRF
	}
	if subtle.ConstantTimeCompare([]byte(r.PostFormValue(web.CSRFField)), []byte(c.Value)) != 1 {
		return errCSRF
	}
	return nil
}
