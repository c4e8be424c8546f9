package shot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/chromedp/cdproto/accessibility"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// paperSizes are the paper formats of PDFOptions.Format, in inches (the
// sizes Playwright and Puppeteer use).
var paperSizes = map[string][2]float64{
	"letter":  {8.5, 11},
	"legal":   {8.5, 14},
	"tabloid": {11, 17},
	"ledger":  {17, 11},
	"a0":      {33.1, 46.8},
	"a1":      {23.4, 33.1},
	"a2":      {16.54, 23.4},
	"a3":      {11.7, 16.54},
	"a4":      {8.27, 11.7},
	"a5":      {5.83, 8.27},
	"a6":      {4.13, 5.83},
}

// PDFOptions describe a PDF of a page. The zero value plus Page.URL prints
// on US Letter, portrait, at scale 1, with print styles and no backgrounds.
type PDFOptions struct {
	Page
	// Landscape turns the paper sideways.
	Landscape bool
	// Scale of the rendering, 0.1 to 2; 0 means 1.
	Scale float64
	// Format is a paper size: Letter, Legal, Tabloid, Ledger or A0-A6
	// (case-insensitive); empty means Letter.
	Format string
	// PrintBackground prints background colours and images.
	PrintBackground bool
	// MediaScreen renders with screen styles instead of print styles.
	MediaScreen bool
}

// Validate reports options that cannot work.
func (o *PDFOptions) Validate() error {
	if o.Scale != 0 && (o.Scale < 0.1 || o.Scale > 2) {
		return fmt.Errorf("--scale %g: want 0.1 to 2", o.Scale)
	}
	if _, ok := paperSizes[strings.ToLower(o.Format)]; o.Format != "" && !ok {
		names := make([]string, 0, len(paperSizes))
		for n := range paperSizes {
			names = append(names, n)
		}
		sort.Strings(names)
		return fmt.Errorf("--format %q: want one of %s", o.Format, strings.Join(names, ", "))
	}
	return o.Page.validate()
}

// PDF loads the page and prints it to PDF.
func (b *Browser) PDF(ctx context.Context, o PDFOptions) ([]byte, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	var data []byte
	err := b.open(ctx, o.Page, func(l *loaded) error {
		if o.MediaScreen {
			if _, err := chromedp.Call(l.ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{Media: "screen"}); err != nil {
				return fmt.Errorf("emulate screen media: %w", err)
			}
		}
		params := page.PrintToPDFParams{
			Landscape:       new(o.Landscape),
			PrintBackground: new(o.PrintBackground),
			Scale:           o.Scale,
		}
		if size, ok := paperSizes[strings.ToLower(o.Format)]; ok {
			params.PaperWidth, params.PaperHeight = size[0], size[1]
		}
		res, err := chromedp.Call(l.ctx, page.PrintToPDF, params)
		if err != nil {
			return fmt.Errorf("print to PDF: %w", err)
		}
		data = res.Data
		return nil
	})
	return data, err
}

// htmlJS serialises the document like Playwright's page.content(): the
// doctype, then the root element's outerHTML.
const htmlJS = `(() => {
  const d = document.doctype;
  let s = '';
  if (d) s = '<!DOCTYPE ' + d.name + (d.publicId ? ' PUBLIC "' + d.publicId + '"' : '') + (!d.publicId && d.systemId ? ' SYSTEM' : '') + (d.systemId ? ' "' + d.systemId + '"' : '') + '>';
  return s + (document.documentElement ? document.documentElement.outerHTML : '');
})()`

// HTML loads the page, runs its steps and returns the rendered DOM as HTML,
// including content that scripts added. A non-empty selector returns the
// outerHTML of the first matching element instead.
func (b *Browser) HTML(ctx context.Context, p Page, selector string) (string, error) {
	if err := p.validate(); err != nil {
		return "", err
	}
	var html string
	err := b.open(ctx, p, func(l *loaded) error {
		expr := htmlJS
		if selector != "" {
			sel, _ := json.Marshal(selector)
			expr = `(() => { const el = document.querySelector(` + string(sel) + `); return el ? el.outerHTML : null; })()`
		}
		raw, err := evaluate(l.ctx, expr)
		if err != nil {
			return fmt.Errorf("read HTML: %w", err)
		}
		if string(raw) == "null" {
			return fmt.Errorf("selector %q matched no element", selector)
		}
		return json.Unmarshal(raw, &html)
	})
	return html, err
}

// Evaluate loads the page, runs its steps, then evaluates expr and returns
// its value as JSON. A returned Promise is awaited; undefined becomes null.
func (b *Browser) Evaluate(ctx context.Context, p Page, expr string) (json.RawMessage, error) {
	if err := p.validate(); err != nil {
		return nil, err
	}
	if strings.TrimSpace(expr) == "" {
		return nil, errors.New("no JavaScript expression given")
	}
	var out json.RawMessage
	err := b.open(ctx, p, func(l *loaded) error {
		var err error
		out, err = evaluate(l.ctx, expr)
		if err != nil {
			return fmt.Errorf("javascript: %w", err)
		}
		return nil
	})
	return out, err
}

// axProps are the accessibility properties copied into the snapshot, the
// set Playwright's accessibility.snapshot() reports.
var axProps = map[string]bool{
	"checked": true, "disabled": true, "expanded": true, "focused": true, "haspopup": true,
	"invalid": true, "level": true, "modal": true, "multiline": true, "multiselectable": true,
	"orientation": true, "pressed": true, "readonly": true, "required": true, "selected": true,
	"valuemax": true, "valuemin": true, "valuetext": true, "autocomplete": true, "keyshortcuts": true,
	"roledescription": true,
}

// Accessibility loads the page and returns Chromium's accessibility tree as
// nested JSON objects ({"role", "name", ..., "children": [...]}), keeping
// only nodes a screen reader would announce, like Playwright's snapshot.
func (b *Browser) Accessibility(ctx context.Context, p Page) (json.RawMessage, error) {
	if err := p.validate(); err != nil {
		return nil, err
	}
	var out json.RawMessage
	err := b.open(ctx, p, func(l *loaded) error {
		res, err := chromedp.Call(l.ctx, accessibility.GetFullAXTree, accessibility.GetFullAXTreeParams{})
		if err != nil {
			return fmt.Errorf("read accessibility tree: %w", err)
		}
		if len(res.Nodes) == 0 {
			return errors.New("read accessibility tree: empty tree")
		}
		byID := make(map[accessibility.NodeID]*accessibility.Node, len(res.Nodes))
		for _, n := range res.Nodes {
			byID[n.NodeID] = n
		}
		tree := axBuild(res.Nodes[0], byID)
		var root any = map[string]any{"role": "WebArea"}
		if len(tree) == 1 {
			root = tree[0]
		} else if len(tree) > 1 {
			root = map[string]any{"role": "WebArea", "children": tree}
		}
		out, err = json.Marshal(root)
		return err
	})
	return out, err
}

// axBuild turns node into snapshot objects. Ignored and unnamed generic
// nodes are dropped and their children hoisted, so it returns a list.
func axBuild(n *accessibility.Node, byID map[accessibility.NodeID]*accessibility.Node) []map[string]any {
	var children []map[string]any
	for _, id := range n.ChildIDs {
		if c, ok := byID[id]; ok {
			children = append(children, axBuild(c, byID)...)
		}
	}
	role := axString(n.Role)
	name := axString(n.Name)
	switch {
	case n.Ignored, role == "InlineTextBox", role == "LineBreak" && name == "",
		(role == "generic" || role == "none" || role == "") && name == "":
		if role == "InlineTextBox" {
			return nil
		}
		return children
	}
	if role == "StaticText" {
		role = "text"
	}
	m := map[string]any{"role": role}
	if name != "" {
		m["name"] = name
	}
	if n.Value != nil && len(n.Value.Value) > 0 {
		m["value"] = json.RawMessage(n.Value.Value)
	}
	if d := axString(n.Description); d != "" {
		m["description"] = d
	}
	for _, prop := range n.Properties {
		if axProps[string(prop.Name)] && prop.Value != nil && len(prop.Value.Value) > 0 {
			m[string(prop.Name)] = json.RawMessage(prop.Value.Value)
		}
	}
	// A text node repeating its parent's name adds nothing.
	if len(children) == 1 && children[0]["role"] == "text" && children[0]["name"] == name && len(children[0]) == 2 {
		children = nil
	}
	if len(children) > 0 {
		m["children"] = children
	}
	return []map[string]any{m}
}

func axString(v *accessibility.Value) string {
	if v == nil || len(v.Value) == 0 {
		return ""
	}
	var s string
	if json.Unmarshal(v.Value, &s) != nil {
		return string(v.Value)
	}
	return s
}
