package server

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"lode/internal/web"
)

func TestHTMLCSRF(t *testing.T) {
	// A first visit sets the cookie; a second visit with it reuses the token.
	rec := httptest.NewRecorder()
	tok := htmlCSRFToken(rec, httptest.NewRequest("GET", "/db/q", nil))
	cookies := rec.Result().Cookies()
	if len(cookies) != 1 || cookies[0].Value != tok || !cookies[0].HttpOnly || cookies[0].SameSite != http.SameSiteLaxMode {
		t.Fatalf("cookie = %+v; want one HttpOnly SameSite=Lax cookie with %q", cookies, tok)
	}
	again := httptest.NewRequest("GET", "/db/q", nil)
	again.AddCookie(cookies[0])
	rec2 := httptest.NewRecorder()
	if got := htmlCSRFToken(rec2, again); got != tok || len(rec2.Result().Cookies()) != 0 {
		t.Errorf("second visit token = %q (new cookie %v); want %q and no new cookie", got, rec2.Result().Cookies(), tok)
	}

	post := func(field string, cookie bool) *http.Request {
		r := httptest.NewRequest("POST", "/db/q", strings.NewReader(url.Values{web.CSRFField: {field}}.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if cookie {
			r.AddCookie(cookies[0])
		}
		return r
	}
	if err := htmlCheckCSRF(post(tok, true)); err != nil {
		t.Errorf("matching token: %v", err)
	}
	for name, r := range map[string]*http.Request{
		"wrong token": post(strings.Repeat("0", 32), true),
		"no cookie":   post(tok, false),
		"no field":    post("", true),
	} {
		if err := htmlCheckCSRF(r); err != errHTMLCSRF {
			t.Errorf("%s: htmlCheckCSRF = %v; want errHTMLCSRF", name, err)
		}
	}
}
