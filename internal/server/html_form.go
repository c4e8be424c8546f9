package server

import (
	"crypto/rand"
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

// htmlCSRFCookie holds the CSRF token of the HTML write forms; the form repeats it
// in web.CSRFField. A cross-site page can make a browser send the cookie but
// cannot read it, so it cannot fill in the field (double-submit cookie, the
// scheme of Datasette's asgi-csrf). SameSite=Lax keeps the cookie off
// cross-site POSTs as well.
const htmlCSRFCookie = "lode_csrftoken"

// errHTMLCSRF is the message of a form POST whose token is missing or wrong.
var errHTMLCSRF = errors.New("form token missing or wrong (CSRF check failed): reload the page and submit the form again")

// htmlCSRFToken returns the request's CSRF token, creating one (and its cookie)
// when the browser has none yet.
func htmlCSRFToken(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(htmlCSRFCookie); err == nil && htmlValidToken(c.Value) {
		return c.Value
	}
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+).
	tok := hex.EncodeToString(b[:])
	http.SetCookie(w, &http.Cookie{
		Name: htmlCSRFCookie, Value: tok, Path: "/",
		HttpOnly: true, SameSite: http.SameSiteLaxMode,
	})
	return tok
}

func htmlValidToken(s string) bool {
	if len(s) != 32 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// htmlCheckCSRF reports errHTMLCSRF unless the parsed form's token equals the cookie.
func htmlCheckCSRF(r *http.Request) error {
	c, err := r.Cookie(htmlCSRFCookie)
	if err != nil || !htmlValidToken(c.Value) {
		return errHTMLCSRF
	}
	if subtle.ConstantTimeCompare([]byte(r.PostFormValue(web.CSRFField)), []byte(c.Value)) != 1 {
		return errHTMLCSRF
	}
	return nil
}
