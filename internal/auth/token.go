package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// TokenPrefix starts every Lode API token, like Datasette's "dstok_".
const TokenPrefix = "lodetok_"

// SecretEnv is the environment variable that holds the signing secret.
const SecretEnv = "LODE_SECRET"

// SecretFileName is the generated secret's file, next to the config file.
const SecretFileName = ".lode-secret"

// Token errors. Callers answer all of them with 401 and the message.
var (
	ErrTokenInvalid = errors.New("auth: invalid token")
	ErrTokenExpired = errors.New("auth: token has expired")
)

// tokenPayload is the signed JSON of a token: actor id, issue time and
// optional lifetime in seconds, and restrictions.
type tokenPayload struct {
	Actor    string        `json:"a"`
	Issued   int64         `json:"t"`
	Duration int64         `json:"d,omitempty"`
	Restrict *Restrictions `json:"_r,omitempty"`
}

// TokenOptions are what `lode token create` puts in a token.
type TokenOptions struct {
	Actor        string        // actor id (required)
	ExpiresAfter time.Duration // 0: never expires
	Restrict     *Restrictions // nil: no restrictions
	Now          time.Time     // issue time; zero means time.Now()
}

// CreateToken signs a bearer token with secret. The token is
// TokenPrefix + base64url(JSON payload) + "." + base64url(HMAC-SHA256).
func CreateToken(secret []byte, o TokenOptions) (string, error) {
	if o.Actor == "" {
		return "", errors.New("token needs an actor id (--actor ID)")
	}
	if len(secret) == 0 {
		return "", errors.New("token needs a signing secret")
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	if o.ExpiresAfter < 0 {
		return "", errors.New("expiry must not be negative")
	}
	if r := o.Restrict; r != nil {
		for _, list := range restrictionLists(r) {
			for i, a := range list {
				long, ok := ResolveAction(a)
				if !ok {
					return "", fmt.Errorf("unknown action %q: want one of insert-row, update-row, delete-row, create-table, alter-table, drop-table, view-instance, view-database, view-table, view-query, execute-sql (or ir, ur, dr, ct, at, dt, vi, vd, vt, vq, es)", a)
				}
				list[i] = long
			}
		}
	}
	p := tokenPayload{Actor: o.Actor, Issued: o.Now.Unix(), Duration: int64(o.ExpiresAfter / time.Second), Restrict: o.Restrict}
	if o.ExpiresAfter > 0 && p.Duration == 0 {
		p.Duration = 1
	}
	b, err := json.Marshal(p)
	if err != nil {
		return "", err
	}
	body := base64.RawURLEncoding.EncodeToString(b)
	return TokenPrefix + body + "." + sign(secret, body), nil
}

func restrictionLists(r *Restrictions) [][]string {
	out := [][]string{r.All}
	for _, l := range r.Databases {
		out = append(out, l)
	}
	for _, m := range r.Resources {
		for _, l := range m {
			out = append(out, l)
		}
	}
	return out
}

func sign(secret []byte, body string) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("lode-token:" + body))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// VerifyToken checks a token's signature and expiry at now and returns its
// actor ({"id": ..., "token": "lode"}, plus "token_expires" when it
// expires) and restrictions.
func VerifyToken(secret []byte, token string, now time.Time) (Actor, *Restrictions, error) {
	rest, ok := strings.CutPrefix(token, TokenPrefix)
	if !ok {
		return nil, nil, ErrTokenInvalid
	}
	body, sig, ok := strings.Cut(rest, ".")
	if !ok || !hmac.Equal([]byte(sig), []byte(sign(secret, body))) {
		return nil, nil, ErrTokenInvalid
	}
	b, err := base64.RawURLEncoding.DecodeString(body)
	if err != nil {
		return nil, nil, ErrTokenInvalid
	}
	var p tokenPayload
	if err := json.Unmarshal(b, &p); err != nil || p.Actor == "" {
		return nil, nil, ErrTokenInvalid
	}
	actor := Actor{"id": p.Actor, "token": "lode"}
	if p.Duration > 0 {
		exp := p.Issued + p.Duration
		if now.Unix() >= exp {
			return nil, nil, ErrTokenExpired
		}
		actor["token_expires"] = exp
	}
	return actor, p.Restrict, nil
}

// LoadSecret returns the signing secret: flag if set, else $LODE_SECRET,
// else the contents of SecretFileName in the directory of configPath
// (without a config: the user's config directory, e.g. ~/.config/lode),
// generated with 0600 permissions on first use. Worker processes and
// `lode token create` find the same file.
func LoadSecret(flag, configPath string) ([]byte, error) {
	if flag != "" {
		return []byte(flag), nil
	}
	if s := os.Getenv(SecretEnv); s != "" {
		return []byte(s), nil
	}
	dir := "."
	if configPath != "" {
		dir = filepath.Dir(configPath)
	} else if ucd, err := os.UserConfigDir(); err == nil {
		dir = filepath.Join(ucd, "lode")
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("create %s for the token secret (or pass --secret or set %s): %w", dir, SecretEnv, err)
		}
	}
	path := filepath.Join(dir, SecretFileName)
	if b, err := os.ReadFile(path); err == nil {
		if s := strings.TrimSpace(string(b)); s != "" {
			return []byte(s), nil
		}
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return nil, err
	}
	// Write a temporary file, then hard-link it into place: the link fails
	// if another process won the race, and then its secret is used, so no
	// one ever reads a half-written file.
	tmp, err := os.CreateTemp(dir, ".lode-secret-*")
	if err != nil {
		return nil, fmt.Errorf("create secret file in %s (or pass --secret or set %s): %w", dir, SecretEnv, err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return nil, err
	}
	if _, err := tmp.WriteString(hex.EncodeToString(raw) + "\n"); err != nil {
		tmp.Close()
		return nil, err
	}
	if err := tmp.Close(); err != nil {
		return nil, err
	}
	if err := os.Link(tmp.Name(), path); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("write secret file %s: %w", path, err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read secret file: %w", err)
	}
	return []byte(strings.TrimSpace(string(b))), nil
}
