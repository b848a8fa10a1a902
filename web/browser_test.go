package web_test

import (
	"bytes"
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"contactd/internal/redistest"
	"contactd/web"
	"contactd/workflow"

	"github.com/chromedp/chromedp"
)

// EnvChromium names the variable holding the path of a Chromium binary;
// scripts/test.d/chromium.sh sets it when Debian's chromium is installed.
const EnvChromium = "CONTACTD_TEST_CHROMIUM"

// browser starts a headless Chromium for t, reaching no host but loopback.
func browser(t *testing.T) context.Context {
	t.Helper()
	path := os.Getenv(EnvChromium)
	if path == "" {
		t.Skipf("SKIPPED: no browser test: set %s=/usr/bin/chromium (scripts/test.sh installs Debian's chromium)", EnvChromium)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox, // tests run as root
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(900, 1100),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-pings", true),
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"),
		// A browser that prefers German: the page must follow the contact.
		chromedp.Flag("accept-lang", "de-DE,de"),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelCtx(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start %s: %v", path, err)
	}
	return ctx
}

// page is what the browser saw of a page.
type page struct {
	Lang, Text, AcceptColour string
}

// look reads the language, the text and the accept button's colour, which
// is only green when the Content-Security-Policy let the inline style in.
func look(t *testing.T, ctx context.Context) page {
	t.Helper()
	var p page
	var err error
	if p.Lang, err = chromedp.Run(ctx, chromedp.Evaluate[string](`document.documentElement.lang`)); err != nil {
		t.Fatalf("read lang: %v", err)
	}
	if p.Text, err = chromedp.Run(ctx, chromedp.Text(chromedp.CSS("main"))); err != nil {
		t.Fatalf("read text: %v", err)
	}
	p.AcceptColour, err = chromedp.Run(ctx, chromedp.Evaluate[string](
		`(() => { const b = document.querySelector('#accept'); return b ? getComputedStyle(b).backgroundColor : ''; })()`))
	if err != nil {
		t.Fatalf("read style: %v", err)
	}
	return p
}

// screenshot saves the whole page as a PNG in dir and logs where.
func screenshot(t *testing.T, ctx context.Context, dir, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) {
		t.Fatalf("screenshot %s is not a PNG", name)
	}
	path := filepath.Join(dir, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}

// TestBrowserAcceptAndDecline opens validation links in a real Chromium,
// checks each page speaks its contact's language, and clicks the buttons.
func TestBrowserAcceptAndDecline(t *testing.T) {
	bctx := browser(t)
	ts := httptest.NewUnstartedServer(nil)
	base := "http://" + ts.Listener.Addr().String()
	e := newEnv(t, redistest.Mini(t), func(p *web.Params) { p.Config.HTTP.BaseURL = base })
	ts.Config.Handler = e.h
	ts.Start()
	defer ts.Close()
	shots := t.TempDir()
	if dir := os.Getenv("CONTACTD_TEST_SCREENSHOTS"); dir != "" {
		shots = dir // kept after the test, for a look or as a CI artefact
	}

	open := func(t *testing.T, token string) (context.Context, context.CancelFunc) {
		tab, cancelTab := chromedp.NewContext(bctx)
		ctx, cancel := context.WithTimeout(tab, 60*time.Second)
		if err := chromedp.Do(ctx, chromedp.Navigate(base+"/v/"+token),
			chromedp.WaitVisible(chromedp.ID("accept"))); err != nil {
			t.Fatalf("open validation page: %v", err)
		}
		return ctx, func() { cancel(); cancelTab() }
	}
	click := func(t *testing.T, ctx context.Context, button string) page {
		if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID(button)),
			chromedp.WaitVisible(chromedp.CSS("p.message"))); err != nil {
			t.Fatalf("click %s: %v", button, err)
		}
		return look(t, ctx)
	}

	t.Run("accept", func(t *testing.T) {
		r := e.create("example.com", "ad1-ovh", map[string]string{"tech": "nw1-ovh"})

		ctx, done := open(t, e.token(r.ID, "nw1-ovh"))
		defer done()
		p := look(t, ctx)
		if p.Lang != "fr" || !strings.Contains(p.Text, "Changement de contact") || !strings.Contains(p.Text, "Vous deviendriez le contact technique") {
			t.Errorf("Nora's page is not in French: lang %q:\n%s", p.Lang, p.Text)
		}
		for _, want := range []string{"example.com", "Alice Admin (ad1-ovh)", "Tom Tech (te1-ovh)", "Nora New (nw1-ovh)", "16 mars 2026 à 09:00 UTC"} {
			if !strings.Contains(p.Text, want) {
				t.Errorf("page lacks %q:\n%s", want, p.Text)
			}
		}
		if p.AcceptColour != "rgb(21, 128, 61)" {
			t.Errorf("accept button colour = %q: the inline style was not applied (CSP?)", p.AcceptColour)
		}
		screenshot(t, ctx, shots, "validation-fr")
		out := click(t, ctx, "accept")
		if !strings.Contains(out.Text, "Votre accord est enregistré") || !strings.Contains(out.Text, "Alice Admin (ad1-ovh)") {
			t.Errorf("outcome after Nora accepts:\n%s", out.Text)
		}
		screenshot(t, ctx, shots, "accepted-fr")

		ctx2, done2 := open(t, e.token(r.ID, "ad1-ovh"))
		defer done2()
		p = look(t, ctx2)
		if p.Lang != "en" || !strings.Contains(p.Text, "You asked for this change") {
			t.Errorf("Alice's page is not in English: lang %q:\n%s", p.Lang, p.Text)
		}
		out = click(t, ctx2, "accept")
		if !strings.Contains(out.Text, "the change is applied") {
			t.Errorf("outcome after both accept:\n%s", out.Text)
		}
		screenshot(t, ctx2, shots, "applied-en")
		got := e.get(r.ID)
		if got.Status != workflow.Applied || got.Approvals["nw1-ovh"].Channel != workflow.Web {
			t.Errorf("request after the clicks: status %s, nw1-ovh %+v; want applied, via web", got.Status, got.Approvals["nw1-ovh"])
		}
	})

	t.Run("decline", func(t *testing.T) {
		r := e.create("hosting-9", "ad1-ovh", map[string]string{"billing": "nw2-ovh"})
		ctx, done := open(t, e.token(r.ID, "ad1-ovh"))
		defer done()
		p := look(t, ctx)
		if p.Lang != "en" || !strings.Contains(p.Text, "billing contact") || !strings.Contains(p.Text, "Ned New (nw2-ovh)") {
			t.Errorf("page:\nlang %q\n%s", p.Lang, p.Text)
		}
		// Decline first asks for confirmation: nothing is posted yet.
		if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("decline")), chromedp.WaitVisible(chromedp.ID("decline-confirm"))); err != nil {
			t.Fatalf("open the confirmation: %v", err)
		}
		if got := e.get(r.ID).Status; got != workflow.Pending {
			t.Fatalf("status after the first click = %s, want pending", got)
		}
		screenshot(t, ctx, shots, "decline-confirm-en")
		out := click(t, ctx, "decline-confirm")
		if !strings.Contains(out.Text, "You declined") {
			t.Errorf("outcome after declining:\n%s", out.Text)
		}
		screenshot(t, ctx, shots, "declined-en")
		if got := e.get(r.ID).Status; got != workflow.Declined {
			t.Errorf("status = %s, want declined", got)
		}
		// Back and submit again: the link is dead now.
		if err := chromedp.Do(ctx, chromedp.NavigateBack(), chromedp.WaitVisible(chromedp.CSS("h1")), chromedp.Reload()); err != nil {
			t.Fatal(err)
		}
		status, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("h1")))
		if err != nil {
			t.Fatal(err)
		}
		// Nothing tells whose link it was: the page follows the browser,
		// which prefers German.
		if !strings.Contains(status, "Dieser Link oder Code ist nicht gültig") {
			t.Errorf("reopened link shows %q, want the invalid-link page in German", status)
		}
	})

	t.Run("code typed on /v", func(t *testing.T) {
		r := e.create("overdue.org", "ad1-ovh", map[string]string{"tech": "nw2-ovh"})
		tok := e.token(r.ID, "nw2-ovh")
		typed := strings.ReplaceAll(grouped(tok), "-", " ")
		tab, cancelTab := chromedp.NewContext(bctx)
		defer cancelTab()
		ctx, cancel := context.WithTimeout(tab, 60*time.Second)
		defer cancel()
		if err := chromedp.Do(ctx, chromedp.Navigate(base+"/v"), chromedp.WaitVisible(chromedp.ID("code"))); err != nil {
			t.Fatalf("open /v: %v", err)
		}
		screenshot(t, ctx, shots, "code-en")
		if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.ID("code"), typed), chromedp.Click(chromedp.ID("go")),
			chromedp.WaitVisible(chromedp.ID("accept"))); err != nil {
			t.Fatalf("type the code and go: %v", err)
		}
		url, err := chromedp.Run(ctx, chromedp.Location())
		if err != nil {
			t.Fatal(err)
		}
		if url != base+"/v/"+tok {
			t.Errorf("landed on %s, want %s/v/<code>", url, base)
		}
		p := look(t, ctx)
		if !strings.Contains(p.Text, "overdue.org") || !strings.Contains(p.Text, "Ned New (nw2-ovh)") {
			t.Errorf("the code's page does not show its request:\n%s", p.Text)
		}
		out := click(t, ctx, "accept")
		if !strings.Contains(out.Text, "Your acceptance is recorded") {
			t.Errorf("outcome after accepting:\n%s", out.Text)
		}
		if got := e.get(r.ID).Approvals["nw2-ovh"]; got.Status != "accepted" || got.Channel != workflow.Web {
			t.Errorf("nw2-ovh's approval = %+v, want accepted via web", got)
		}
	})
}
