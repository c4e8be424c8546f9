package shot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/storage"
	"github.com/chromedp/chromedp"
)

// AuthState is a signed-in browser state: cookies plus localStorage per
// origin. Its JSON is Playwright's storage-state format, which shot-scraper
// auth writes, so auth.json files move between the two tools.
type AuthState struct {
	Cookies []AuthCookie `json:"cookies"`
	Origins []AuthOrigin `json:"origins"`
}

// AuthCookie is one cookie in Playwright's storage-state format. Expires is
// seconds since the Unix epoch, -1 for a session cookie.
type AuthCookie struct {
	Name     string  `json:"name"`
	Value    string  `json:"value"`
	Domain   string  `json:"domain"`
	Path     string  `json:"path"`
	Expires  float64 `json:"expires"`
	HTTPOnly bool    `json:"httpOnly"`
	Secure   bool    `json:"secure"`
	SameSite string  `json:"sameSite,omitempty"`
}

// AuthOrigin holds the localStorage items of one origin.
type AuthOrigin struct {
	Origin       string          `json:"origin"`
	LocalStorage []AuthNameValue `json:"localStorage"`
}

// AuthNameValue is one localStorage item.
type AuthNameValue struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// LoadAuth reads an auth file written by SaveAuth, `lode shot auth` or
// `shot-scraper auth`.
func LoadAuth(path string) (*AuthState, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read auth file: %w", err)
	}
	var a AuthState
	if err := json.Unmarshal(data, &a); err != nil {
		return nil, fmt.Errorf("auth file %s is not a storage-state JSON object ({\"cookies\": [...], \"origins\": [...]}): %w", path, err)
	}
	return &a, nil
}

// SaveAuth writes a to path with mode 0600: it holds session secrets.
func SaveAuth(path string, a *AuthState) error {
	data, err := json.MarshalIndent(a, "", "  ")
	if err != nil {
		return fmt.Errorf("encode auth state: %w", err)
	}
	data = append(data, '\n')
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return fmt.Errorf("write auth file: %w", err)
	}
	// WriteFile keeps the mode of an existing file; tighten it.
	if err := os.Chmod(path, 0o600); err != nil {
		return fmt.Errorf("chmod auth file: %w", err)
	}
	return nil
}

// apply loads the cookies into the tab's browser context and arranges for
// each origin's localStorage items to exist before the page's own scripts
// run. Items the page already has are left alone, so a page that changes
// its storage and navigates keeps its change.
func (a *AuthState) apply(ctx context.Context) error {
	cookies := make([]*network.CookieParam, 0, len(a.Cookies))
	for _, c := range a.Cookies {
		p := &network.CookieParam{
			Name: c.Name, Value: c.Value, Domain: c.Domain, Path: c.Path,
			Secure: c.Secure, HTTPOnly: c.HTTPOnly,
			SameSite: network.CookieSameSite(c.SameSite),
		}
		if c.Expires > 0 {
			p.Expires = epoch(c.Expires)
		}
		cookies = append(cookies, p)
	}
	if err := setCookies(ctx, cookies); err != nil {
		return err
	}
	if len(a.Origins) == 0 {
		return nil
	}
	byOrigin := map[string][][2]string{}
	for _, o := range a.Origins {
		for _, kv := range o.LocalStorage {
			byOrigin[o.Origin] = append(byOrigin[o.Origin], [2]string{kv.Name, kv.Value})
		}
	}
	data, err := json.Marshal(byOrigin)
	if err != nil {
		return fmt.Errorf("encode localStorage: %w", err)
	}
	script := `(() => { const items = (` + string(data) + `)[location.origin]; if (!items) return;
  try { for (const [k, v] of items) { if (localStorage.getItem(k) === null) localStorage.setItem(k, v); } } catch (e) {} })();`
	if _, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: script}); err != nil {
		return fmt.Errorf("install localStorage script: %w", err)
	}
	return nil
}

// CaptureAuth loads p, waits for ready to return (for example until a person
// who signed in in a visible window presses Enter; nil means no wait), then
// returns the cookies of the page's browser context and the localStorage of
// the page's origin. p's JavaScript and WaitFor can script a sign-in.
func (b *Browser) CaptureAuth(ctx context.Context, p Page, ready func(ctx context.Context) error) (*AuthState, error) {
	var state *AuthState
	err := b.open(ctx, p, func(l *loaded) error {
		if ready != nil {
			if err := ready(l.ctx); err != nil {
				return err
			}
		}
		c := chromedp.FromContext(l.ctx)
		if c == nil {
			return errors.New("capture auth: not a chromedp context")
		}
		res, err := chromedp.CallBrowser(l.ctx, storage.GetCookies, storage.GetCookiesParams{BrowserContextID: c.BrowserContextID})
		if err != nil {
			return fmt.Errorf("read cookies: %w", err)
		}
		state = &AuthState{Cookies: []AuthCookie{}, Origins: []AuthOrigin{}}
		for _, ck := range res.Cookies {
			exp := ck.Expires
			if ck.Session {
				exp = -1
			}
			state.Cookies = append(state.Cookies, AuthCookie{
				Name: ck.Name, Value: ck.Value, Domain: ck.Domain, Path: ck.Path,
				Expires: exp, HTTPOnly: ck.HTTPOnly, Secure: ck.Secure, SameSite: string(ck.SameSite),
			})
		}
		raw, err := evaluate(l.ctx, `(() => { try { return {origin: location.origin, items: Object.entries(localStorage)}; } catch (e) { return {origin: location.origin, items: []}; } })()`)
		if err != nil {
			return fmt.Errorf("read localStorage: %w", err)
		}
		var ls struct {
			Origin string      `json:"origin"`
			Items  [][2]string `json:"items"`
		}
		if err := json.Unmarshal(raw, &ls); err != nil {
			return fmt.Errorf("decode localStorage: %w", err)
		}
		if len(ls.Items) > 0 && ls.Origin != "null" {
			o := AuthOrigin{Origin: ls.Origin}
			for _, kv := range ls.Items {
				o.LocalStorage = append(o.LocalStorage, AuthNameValue{Name: kv[0], Value: kv[1]})
			}
			state.Origins = append(state.Origins, o)
		}
		return nil
	})
	return state, err
}
