package loadgen

import (
	"fmt"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Base is one server a scenario's relative URLs can go to, with its share
// of the virtual users (see Scenario.Bases).
type Base struct {
	URL string
	// Weight is the relative share; 0 means 1.
	Weight int
}

// ParseBase parses "URL" or "URL=WEIGHT" (the --base-url syntax), e.g.
// http://127.0.0.1:8002=3.
func ParseBase(s string) (Base, error) {
	b := Base{URL: s}
	if i := strings.LastIndexByte(s, '='); i > 0 && !strings.ContainsAny(s[i:], "/?&") {
		w, err := strconv.Atoi(s[i+1:])
		if err != nil || w < 1 {
			return b, fmt.Errorf("base URL %q: the weight after = must be a positive integer", s)
		}
		b.URL, b.Weight = s[:i], w
	}
	if !strings.HasPrefix(b.URL, "http://") && !strings.HasPrefix(b.URL, "https://") {
		return b, fmt.Errorf("base URL %q: want http:// or https://", b.URL)
	}
	return b, nil
}

// bases returns the effective base URLs: Bases, else BaseURL alone.
func (s *Scenario) bases() []Base {
	if len(s.Bases) > 0 {
		return s.Bases
	}
	return []Base{{URL: s.BaseURL, Weight: 1}}
}

// baseKey identifies the bases a scenario was prepared for.
func (s *Scenario) baseKey() string {
	var b strings.Builder
	for _, x := range s.bases() {
		fmt.Fprintf(&b, "%s=%d\n", x.URL, x.Weight)
	}
	return b.String()
}

// prepareBases checks the bases and builds the cumulative weights that
// baseFor uses.
func (s *Scenario) prepareBases() error {
	s.baseCum = s.baseCum[:0]
	total := 0
	for i := range s.Bases {
		b := &s.Bases[i]
		if b.Weight < 0 {
			return fmt.Errorf("base URL %q: weight %d: want 1 or more", b.URL, b.Weight)
		}
		if b.Weight == 0 {
			b.Weight = 1
		}
		if _, err := parseTarget(strings.TrimRight(b.URL, "/") + "/"); err != nil {
			return fmt.Errorf("base URL: %w", err)
		}
		total += b.Weight
		s.baseCum = append(s.baseCum, total)
	}
	return nil
}

// baseFor returns the index of the base that virtual user (or open-model
// slot) u uses: users are dealt round-robin over the weights (with
// weights 3 and 1, users 0-2 go to the first base and 3 to the second,
// then again), and each keeps its base, so its keep-alive connection
// stays with one server as it would behind a load balancer.
func (s *Scenario) baseFor(u int) int {
	if len(s.baseCum) < 2 {
		return 0
	}
	n := u % s.baseCum[len(s.baseCum)-1]
	for i, c := range s.baseCum {
		if n < c {
			return i
		}
	}
	return 0
}

// decodeBaseURL reads base_url: a URL, or a list of URLs or of
// {url: URL, weight: N} mappings.
func decodeBaseURL(n *yaml.Node, s *Scenario) error {
	if n.Kind == yaml.ScalarNode {
		return decodeScalar(n, &s.BaseURL)
	}
	if n.Kind != yaml.SequenceNode || len(n.Content) == 0 {
		return fmt.Errorf("line %d: base_url must be a URL or a list of URLs (each a URL or {url: URL, weight: N})", n.Line)
	}
	for _, e := range n.Content {
		var b Base
		switch e.Kind {
		case yaml.ScalarNode:
			if err := decodeScalar(e, &b.URL); err != nil {
				return err
			}
		case yaml.MappingNode:
			if err := checkKeys(e, "base_url entry", "url", "weight"); err != nil {
				return err
			}
			for i := 0; i+1 < len(e.Content); i += 2 {
				var err error
				switch e.Content[i].Value {
				case "url":
					err = decodeScalar(e.Content[i+1], &b.URL)
				case "weight":
					err = decodeScalar(e.Content[i+1], &b.Weight)
				}
				if err != nil {
					return err
				}
			}
		default:
			return fmt.Errorf("line %d: base_url entry must be a URL or {url: URL, weight: N}", e.Line)
		}
		if b.URL == "" || b.Weight < 0 {
			return fmt.Errorf("line %d: base_url entry needs a url and a weight of 1 or more", e.Line)
		}
		s.Bases = append(s.Bases, b)
	}
	return nil
}
