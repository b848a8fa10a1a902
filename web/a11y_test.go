package web_test

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"contactd/internal/outboxtest"
	"contactd/internal/redistest"
	"contactd/web"
	"contactd/workflow"

	"github.com/chromedp/cdproto/accessibility"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/chromedp"
)

// axeSource is axe-core (Deque Systems, MPL-2.0), vendored unmodified
// with its licence in testdata/axe (see its README.md).
//
//go:embed testdata/axe/axe.min.js
var axeSource string

// axeTags are the rule sets the audit runs: WCAG 2.0, 2.1 and 2.2 at
// levels A and AA, and axe's best practices.
const axeTags = `["wcag2a","wcag2aa","wcag21a","wcag21aa","wcag22aa","best-practice"]`

// widths are the viewports every page is audited at: a desktop, the same
// desktop zoomed to 200 % (WCAG 1.4.4), and a phone.
var widths = []struct {
	name          string
	width, height int64
	mobile        bool
}{{"desktop", 1280, 900, false}, {"zoom200", 640, 450, false}, {"phone", 375, 812, true}}

// auditPage is one page of the audit: open says which address to load
// for it (after setting up what it needs in the store), and steps what to
// click there to reach it.
type auditPage struct {
	name string
	open func(t *testing.T, e *env) (path string, steps []chromedp.Action[chromedp.Void])
}

// click clicks a button and waits for the page it leads to.
func click(id, waitFor string) []chromedp.Action[chromedp.Void] {
	return []chromedp.Action[chromedp.Void]{chromedp.Click(chromedp.ID(id)), chromedp.WaitVisible(chromedp.CSS(waitFor))}
}

// auditPages is every page contactd shows, each reached as a person
// would. A new page is one more line here.
func auditPages() []auditPage {
	var pages []auditPage
	for i, l := range workflow.Languages {
		pages = append(pages, auditPage{"validation/" + string(l), func(t *testing.T, e *env) (string, []chromedp.Action[chromedp.Void]) {
			nic := fmt.Sprintf("pg%d-ovh", i+1)
			r := e.create(fmt.Sprintf("poly-%d.example", i+1), "ad1-ovh", map[string]string{"tech": nic})
			return "/v/" + e.token(r.ID, nic), nil
		}})
	}
	validation := func(t *testing.T, e *env) string {
		r := e.create("example.com", "ad1-ovh", map[string]string{"tech": "nw1-ovh", "billing": "nw2-ovh"})
		return "/v/" + e.token(r.ID, "nw2-ovh")
	}
	pages = append(pages,
		auditPage{"validation, decline confirmation open", func(t *testing.T, e *env) (string, []chromedp.Action[chromedp.Void]) {
			return validation(t, e), click("decline", "#decline-confirm")
		}},
		auditPage{"outcome: accepted, others awaited", func(t *testing.T, e *env) (string, []chromedp.Action[chromedp.Void]) {
			return validation(t, e), click("accept", "p.message")
		}},
		auditPage{"outcome: declined", func(t *testing.T, e *env) (string, []chromedp.Action[chromedp.Void]) {
			return validation(t, e), append(click("decline", "#decline-confirm"), click("decline-confirm", "p.message")...)
		}},
		auditPage{"outcome: applied", func(t *testing.T, e *env) (string, []chromedp.Action[chromedp.Void]) {
			r := e.create("hosting-9", "ad1-ovh", map[string]string{"billing": "nw2-ovh"})
			if _, err := e.store.Decide(context.Background(), e.token(r.ID, "ad1-ovh"), workflow.Accept, workflow.Email); err != nil {
				t.Fatal(err)
			}
			return "/v/" + e.token(r.ID, "nw2-ovh"), click("accept", "p.message")
		}},
		auditPage{"code page", func(t *testing.T, e *env) (string, []chromedp.Action[chromedp.Void]) { return "/v", nil }},
		auditPage{"code page, code refused", func(t *testing.T, e *env) (string, []chromedp.Action[chromedp.Void]) {
			return "/v?code=not+a+code", nil
		}},
		auditPage{"404: unknown link", func(t *testing.T, e *env) (string, []chromedp.Action[chromedp.Void]) {
			return "/v/b" + strings.Repeat("q", workflow.TokenLen-1), nil
		}},
		auditPage{"410: used link", func(t *testing.T, e *env) (string, []chromedp.Action[chromedp.Void]) {
			r := e.create("overdue.org", "ad1-ovh", map[string]string{"tech": "nw1-ovh"})
			tok := e.token(r.ID, "ad1-ovh")
			if _, err := e.store.Decide(context.Background(), tok, workflow.Accept, workflow.Email); err != nil {
				t.Fatal(err)
			}
			return "/v/" + tok, nil
		}},
		auditPage{"404: no such page", func(t *testing.T, e *env) (string, []chromedp.Action[chromedp.Void]) { return "/nothing", nil }},
		auditPage{"report page", func(t *testing.T, e *env) (string, []chromedp.Action[chromedp.Void]) {
			return "/r/" + applied(t, e), nil
		}},
		auditPage{"report recorded", func(t *testing.T, e *env) (string, []chromedp.Action[chromedp.Void]) {
			return "/r/" + applied(t, e), click("report", "p.message")
		}},
	)
	// A hand-over of every service ad1-ovh administers (eleven) to a
	// contact of each language: long words in a table on a phone.
	for i, l := range workflow.Languages {
		pages = append(pages, auditPage{"hand-over/" + string(l), func(t *testing.T, e *env) (string, []chromedp.Action[chromedp.Void]) {
			nic := fmt.Sprintf("pg%d-ovh", i+1)
			return "/v/" + e.handoverToken(handover(t, e, nic), nic), nil
		}})
	}
	pages = append(pages,
		auditPage{"hand-over, decline confirmation open", func(t *testing.T, e *env) (string, []chromedp.Action[chromedp.Void]) {
			return "/v/" + e.handoverToken(handover(t, e, "nw2-ovh"), "nw2-ovh"), click("decline", "#decline-confirm")
		}},
		auditPage{"hand-over outcome: others awaited", func(t *testing.T, e *env) (string, []chromedp.Action[chromedp.Void]) {
			return "/v/" + e.handoverToken(handover(t, e, "nw2-ovh"), "nw2-ovh"), click("accept", "p.message")
		}},
		auditPage{"hand-over report page", func(t *testing.T, e *env) (string, []chromedp.Action[chromedp.Void]) {
			ctx := context.Background()
			id := handover(t, e, "nw1-ovh")
			for _, nic := range []string{"ad1-ovh", "nw1-ovh"} {
				if _, err := e.store.Decide(ctx, e.handoverToken(id, nic), workflow.Accept, workflow.Email); err != nil {
					t.Fatal(err)
				}
			}
			outboxtest.RunJobs(t, e.store)
			return "/r/" + outboxtest.Pending(t, e.store, func(en *workflow.OutboxEntry) bool {
				return en.Handover == id && en.NIC == "te1-ovh" && en.Kind() == workflow.KindInformed
			}), nil
		}},
	)
	return pages
}

// handover makes ad1-ovh hand the technical role of every service it
// administers to nic, and returns the hand-over's id.
func handover(t *testing.T, e *env, nic string) string {
	t.Helper()
	h, err := e.store.CreateHandover(context.Background(), workflow.HandoverAsk{Requester: "ad1-ovh", Changes: map[string]string{"tech": nic}}, workflow.API, "")
	if err != nil {
		t.Fatal(err)
	}
	return h.ID
}

// applied makes a change on example.com that both approvers accepted and
// returns the "this wasn't me" token of its former technical contact.
func applied(t *testing.T, e *env) string {
	t.Helper()
	ctx := context.Background()
	r := e.create("example.com", "ad1-ovh", map[string]string{"tech": "nw1-ovh"})
	for _, nic := range []string{"ad1-ovh", "nw1-ovh"} {
		if _, err := e.store.Decide(ctx, e.token(r.ID, nic), workflow.Accept, workflow.Email); err != nil {
			t.Fatal(err)
		}
	}
	return e.reportToken(r.ID, "te1-ovh")
}

// served starts the server of a fresh store on a loopback port, for a
// browser; it returns the store and the server's address.
func served(t *testing.T, mod func(*web.Params)) (*env, string) {
	t.Helper()
	ts := httptest.NewUnstartedServer(nil)
	base := "http://" + ts.Listener.Addr().String()
	e := newEnv(t, redistest.Mini(t), func(p *web.Params) { p.Config.HTTP.BaseURL = base; mod(p) })
	ts.Config.Handler = e.h
	ts.Start()
	t.Cleanup(ts.Close)
	return e, base
}

// violation is what axe reports of one rule a page breaks.
type violation struct {
	ID     string `json:"id"`
	Impact string `json:"impact"`
	Help   string `json:"help"`
	Nodes  []struct {
		Target []any  `json:"target"`
		HTML   string `json:"html"`
	} `json:"nodes"`
}

// audit runs axe-core on the page the tab shows and returns its
// violations.
func audit(ctx context.Context) ([]violation, error) {
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](axeSource+";true")); err != nil {
		return nil, fmt.Errorf("inject axe: %w", err)
	}
	js := `axe.run(document, {runOnly: {type: "tag", values: ` + axeTags + `}, resultTypes: ["violations"]})
		.then(r => JSON.stringify(r.violations))`
	out, err := chromedp.Run(ctx, chromedp.Evaluate[string](js, chromedp.EvalAwaitPromise))
	if err != nil {
		return nil, fmt.Errorf("run axe: %w", err)
	}
	var vs []violation
	return vs, json.Unmarshal([]byte(out), &vs)
}

// TestAccessibilityAudit opens every page of auditPages in Chromium, at a
// desktop and a phone width, and runs axe-core's WCAG 2.2 A/AA rules and
// best practices on it: no violation of impact serious or critical may
// remain (lesser ones are logged). It also checks what axe does not:
// that no NIC handle or code breaks across lines and that nothing
// scrolls sideways on a phone or at 200 % zoom.
func TestAccessibilityAudit(t *testing.T) {
	bctx := browser(t)
	for _, w := range widths {
		for _, p := range auditPages() {
			t.Run(w.name+"/"+p.name, func(t *testing.T) {
				e, base := served(t, func(p *web.Params) {
					p.Config.Branding.Name, p.Config.Branding.SupportURL = "Example Hosting", "https://help.example.com/contacts"
				})
				polyglots(t, e)
				path, steps := p.open(t, e)
				tab, cancelTab := chromedp.NewContext(bctx)
				defer cancelTab()
				ctx, cancel := context.WithTimeout(tab, 60*time.Second)
				defer cancel()
				var opts []chromedp.EmulateViewportOption
				if w.mobile {
					opts = append(opts, chromedp.EmulateMobile, chromedp.EmulateScale(2))
				}
				load := append([]chromedp.Action[chromedp.Void]{chromedp.EmulateViewport(w.width, w.height, opts...),
					chromedp.Navigate(base + path), chromedp.WaitVisible(chromedp.CSS("h1"))}, steps...)
				if err := chromedp.Do(ctx, load...); err != nil {
					t.Fatalf("open %s: %v", path, err)
				}
				vs, err := audit(ctx)
				if err != nil {
					t.Fatal(err)
				}
				for _, v := range vs {
					var where []string
					for _, n := range v.Nodes {
						where = append(where, fmt.Sprint(n.Target)+" "+n.HTML)
					}
					msg := fmt.Sprintf("%s (%s): %s\n    %s", v.ID, v.Impact, v.Help, strings.Join(where, "\n    "))
					if v.Impact == "serious" || v.Impact == "critical" {
						t.Error(msg)
					} else {
						t.Log(msg)
					}
				}
				broken, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](
					`[...document.querySelectorAll('.nic')].filter(e => e.getClientRects().length > 1).map(e => e.textContent)`))
				if err != nil {
					t.Fatal(err)
				}
				if len(broken) > 0 {
					t.Errorf("broken across lines: %q", broken)
				}
				if w.width < 1280 {
					wide, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth`))
					if err != nil || wide {
						t.Errorf("the page scrolls sideways at %d px (%v)", w.width, err)
					}
				}
			})
		}
	}
}

// TestKeyboardAndScreenReader checks what axe cannot see, on the
// validation page: the order the Tab key walks the controls in, that the
// focused control shows a visible outline, and what a screen reader is
// given (Chromium's accessibility tree, as the DevTools protocol's
// Accessibility.getFullAXTree returns it).
func TestKeyboardAndScreenReader(t *testing.T) {
	bctx := browser(t)
	e, base := served(t, func(p *web.Params) { p.Config.Branding.SupportURL = "https://help.example.com/contacts" })
	r := e.create("example.com", "ad1-ovh", map[string]string{"tech": "nw2-ovh"})
	tab, cancelTab := chromedp.NewContext(bctx)
	defer cancelTab()
	ctx, cancel := context.WithTimeout(tab, 60*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/v/"+e.token(r.ID, "nw2-ovh")), chromedp.WaitVisible(chromedp.ID("accept"))); err != nil {
		t.Fatal(err)
	}

	// Tab walks Accept, then Decline, then the support link, each with a
	// visible outline.
	var order []string
	for i := 0; i < 3; i++ {
		if err := chromedp.Do(ctx, chromedp.KeyEvent("\t")); err != nil {
			t.Fatal(err)
		}
		focus, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`(() => { const a = document.activeElement, s = getComputedStyle(a);
			return [a.id || a.tagName.toLowerCase(), s.outlineStyle, s.outlineWidth]; })()`))
		if err != nil {
			t.Fatal(err)
		}
		order = append(order, focus[0])
		if focus[1] == "none" || focus[2] == "0px" {
			t.Errorf("%s has focus but no visible outline (%s %s)", focus[0], focus[1], focus[2])
		}
	}
	if got, want := strings.Join(order, " "), "accept decline a"; got != want {
		t.Errorf("Tab order = %s, want %s", got, want)
	}
	// Enter on Decline opens the confirmation; its button is next.
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.getElementById("decline").focus(), true`)); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.KeyEvent("\r"), chromedp.WaitVisible(chromedp.ID("decline-confirm"))); err != nil {
		t.Fatalf("Decline does not open with the keyboard: %v", err)
	}

	tree, err := chromedp.Run(ctx, func(ctx context.Context, tg *chromedp.Target) ([]*accessibility.Node, error) {
		res, err := cdp.Call(ctx, tg, accessibility.GetFullAXTree, accessibility.GetFullAXTreeParams{})
		return res.Nodes, err
	})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, n := range tree {
		if n.Ignored || n.Role == nil {
			continue
		}
		role, name := value(n.Role), value(n.Name)
		seen[role+": "+name] = true
		if (role == "button" || role == "link" || role == "columnheader" || role == "textbox") && strings.TrimSpace(name) == "" {
			t.Errorf("a %s has no accessible name", role)
		}
	}
	for _, want := range []string{"heading: Change of contact — example.com", "button: Accept", "DisclosureTriangle: Decline",
		"button: Yes, decline", "columnheader: Role", "columnheader: becomes", "columnheader: From", "columnheader: To",
		"link: https://help.example.com/contacts"} {
		if !seen[want] {
			t.Errorf("the accessibility tree lacks %q", want)
		}
	}
	if t.Failed() {
		var all []string
		for k := range seen {
			all = append(all, k)
		}
		t.Logf("accessibility tree:\n%s", strings.Join(all, "\n"))
	}
}

// value is the text of an accessibility tree value.
func value(v *accessibility.Value) string {
	if v == nil {
		return ""
	}
	var s string
	if json.Unmarshal(v.Value, &s) != nil {
		return string(v.Value)
	}
	return s
}
