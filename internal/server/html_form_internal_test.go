package server

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"lode/internal/web"
)

func TestCSRFToken(t *testing.T) {
	s := &Server{secret: []byte("csrf-secret")}
	// A first visit sets the cookie; a second visit with it reuses the token.
	rec := httptest.NewRecorder()
	tok := s.csrfToken(rec, httptest.NewRequest("GET", "/db/q", nil))
	cookies := rec.Result().Cookies()
	if len(cookies) != 1 || cookies[0].Value != tok || !cookies[0].HttpOnly || cookies[0].SameSite != http.SameSiteLaxMode {
		t.Fatalf("cookie = %+v; want one HttpOnly SameSite=Lax cookie with %q", cookies, tok)
	}
	again := httptest.NewRequest("GET", "/db/q", nil)
	again.AddCookie(cookies[0])
	rec2 := httptest.NewRecorder()
	if got := s.csrfToken(rec2, again); got != tok || len(rec2.Result().Cookies()) != 0 {
		t.Errorf("second visit token = %q (new cookie %v); want %q and no new cookie", got, rec2.Result().Cookies(), tok)
	}

	post := func(field string, cookie *http.Cookie) *http.Request {
		r := httptest.NewRequest("POST", "/db/q", strings.NewReader(url.Values{web.CSRFField: {field}}.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if cookie != nil {
			r.AddCookie(cookie)
		}
		return r
	}
	if err := s.checkCSRF(post(tok, cookies[0])); err != nil {
		t.Errorf("matching token: %v", err)
	}
	// A cookie a sibling host planted, with the same value in the form:
	// well-formed, but not signed by this server's secret.
	forged := strings.Repeat("ab", 32)
	other := &Server{secret: []byte("another-secret")}
	rec3 := httptest.NewRecorder()
	foreign := other.csrfToken(rec3, httptest.NewRequest("GET", "/", nil))
	for name, r := range map[string]*http.Request{
		"wrong token":         post(strings.Repeat("0", 64), cookies[0]),
		"no cookie":           post(tok, nil),
		"no field":            post("", cookies[0]),
		"unsigned cookie":     post(forged, &http.Cookie{Name: csrfCookie, Value: forged}),
		"other server's pair": post(foreign, &http.Cookie{Name: csrfCookie, Value: foreign}),
		"old unsigned format": post(tok[:32], &http.Cookie{Name: csrfCookie, Value: tok[:32]}),
	} {
		if err := s.checkCSRF(r); err != errCSRF {
			t.Errorf("%s: checkCSRF = %v; want errCSRF", name, err)
		}
	}
}
