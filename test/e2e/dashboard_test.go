package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/annexa-dev/annexa/evidence"
	"github.com/annexa-dev/annexa/server/apiv1"
)

// chromium finds Debian's chromium (make test installs it). Without it the
// browser tests are skipped, unless ANNEXA_TEST_CHROMIUM=required (make
// test), where its absence is a failure.
func chromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("ANNEXA_TEST_CHROMIUM") == "required" {
		t.Fatal("chromium is not installed (scripts/test.sh installs Debian's chromium package)")
	}
	t.Skip("chromium not installed: the dashboard's browser test needs Debian's chromium package (make test installs it)")
	return ""
}

// screenshots is where the test leaves a picture of each page for a
// person to look at: $ANNEXA_TEST_OUTPUT/dashboard (make test sets it) or
// the test's artifact directory.
func screenshots(t *testing.T) string {
	dir := t.ArtifactDir()
	if out := os.Getenv("ANNEXA_TEST_OUTPUT"); out != "" {
		dir = filepath.Join(out, "dashboard")
	}
	require.NoError(t, os.MkdirAll(dir, 0o755))
	return dir
}

// pageWatch records what a tab did that the dashboard must never do:
// console errors (CSP violations among them), uncaught exceptions, and
// requests to any origin but the server's.
type pageWatch struct {
	mu       sync.Mutex
	origin   string
	errors   []string
	foreign  []string
	requests int
}

func (w *pageWatch) watch(ctx context.Context) {
	console := chromedp.Console(ctx)
	requests := chromedp.Events(ctx, network.RequestWillBeSent)
	go func() {
		for m, err := range console {
			if err != nil {
				return
			}
			// The pages refused on purpose below (a wrong sign-in, a form
			// without its CSRF token, an analyst's export) are logged by
			// the browser as failed loads: expected, and nothing else is.
			expected := strings.Contains(m.Text, "Failed to load resource: the server responded with a status of 40") &&
				(strings.HasSuffix(m.URL, "/signin") || strings.HasSuffix(m.URL, "/admin/tokens") || strings.HasSuffix(m.URL, "/export"))
			if (m.Type == chromedp.ConsoleError || m.IsException()) && !expected {
				w.mu.Lock()
				w.errors = append(w.errors, fmt.Sprintf("%s:%d %s", m.URL, m.Line+1, m.Text))
				w.mu.Unlock()
			}
		}
	}()
	go func() {
		for ev, err := range requests {
			if err != nil {
				return
			}
			u := ev.Request.URL
			w.mu.Lock()
			w.requests++
			if !strings.HasPrefix(u, w.origin+"/") && !strings.HasPrefix(u, "data:") && u != w.origin {
				w.foreign = append(w.foreign, u)
			}
			w.mu.Unlock()
		}
	}()
}

func TestDashboardInBrowser(t *testing.T) {
	exe := chromium(t)
	shots := screenshots(t)
	s := startServer(t, "sqlite", "", "")

	// A few agents: two pass, one passed two hours ago and now fails disk
	// encryption and ends in error on ssh.
	now := time.Now().UTC()
	var bad *simAgent
	for _, name := range []string{"web-01", "web-02", "laptop-ana"} {
		a := s.enrol(s.token("enroll", apiv1.TokenRequest{Labels: map[string]string{"env": "prod"}}), name)
		results := map[string]evidence.Status{"disk_encryption.system_volume": evidence.Pass, "ssh.root_login": evidence.Pass, "patch_level.security_updates": evidence.Pass}
		_, err := a.ship(a.record(now.Add(-2*time.Hour), results))
		require.NoError(t, err)
		if name == "laptop-ana" {
			bad = a
			results = map[string]evidence.Status{"disk_encryption.system_volume": evidence.Fail, "ssh.root_login": evidence.Error, "patch_level.security_updates": evidence.Pass}
		}
		_, err = a.ship(a.record(now.Add(-time.Minute), results))
		require.NoError(t, err)
	}

	downloads := t.TempDir()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe), chromedp.NoSandbox, chromedp.WindowSize(1280, 900),
		// The server's certificate is its own self-signed one.
		chromedp.IgnoreCertErrors)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(allocCtx)
	defer cancel()
	ctx, cancelT := context.WithTimeout(ctx, 2*time.Minute)
	defer cancelT()

	// The browser starts with the first call; then the watchers subscribe.
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate("about:blank")))
	watch := &pageWatch{origin: s.URL}
	watch.watch(ctx)
	_, err := chromedp.Call(ctx, network.Enable, network.EnableParams{})
	require.NoError(t, err)
	_, err = chromedp.CallBrowser(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllowAndName, DownloadPath: downloads, EventsEnabled: new(true)})
	require.NoError(t, err)

	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		require.NoError(t, chromedp.Do(ctx, steps...), what)
	}
	shot := func(name string) {
		t.Helper()
		buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		require.NoError(t, err, "screenshot "+name)
		require.NoError(t, os.WriteFile(filepath.Join(shots, name+".png"), buf, 0o644))
	}
	location := func() string {
		t.Helper()
		loc, err := chromedp.Run(ctx, chromedp.Location())
		require.NoError(t, err)
		return loc
	}
	text := func() string {
		t.Helper()
		txt, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("main")))
		require.NoError(t, err)
		return txt
	}
	// signIn submits the form and waits for what follows it: the signed-in
	// header, or the sign-in page's error.
	signIn := func(token, then string) {
		t.Helper()
		do("sign in", chromedp.Navigate(s.URL+"/signin"), chromedp.WaitVisible(chromedp.ID("token")),
			chromedp.SendKeys(chromedp.ID("token"), token), chromedp.Submit(chromedp.ID("token")),
			chromedp.WaitVisible(chromedp.CSS(then)))
	}

	// Signed out: any page leads to the sign-in form.
	do("signed out", chromedp.Navigate(s.URL+"/hosts"), chromedp.WaitVisible(chromedp.ID("token")))
	assert.Contains(t, location(), "/signin?next=%2Fhosts")
	shot("01-signin")

	// An enroll token cannot sign in.
	signIn(s.token("enroll", apiv1.TokenRequest{}), "p.error")
	assert.Contains(t, location(), "/signin")
	assert.Contains(t, text(), "an enroll token only enrols agents")

	// The admin: overview → 8.24 → the failing host → its evidence record.
	signIn(s.Admin, "form.signout")
	assert.Equal(t, s.URL+"/", location())
	do("overview", chromedp.WaitVisible(chromedp.CSS("section.theme")))
	page := text()
	assert.Contains(t, page, "Needs attention")
	assert.Contains(t, page, "Organisational controls")
	assert.Contains(t, page, "8.24 Use of cryptography")
	shot("02-overview")

	do("control 8.24", chromedp.Click(chromedp.CSS(`section[aria-labelledby="att"] a[href="/controls/8.24"]`)),
		chromedp.WaitVisible(chromedp.CSS("section.asset")))
	assert.Equal(t, s.URL+"/controls/8.24", location())
	page = text()
	assert.Contains(t, page, "laptop-ana")
	assert.Contains(t, page, "disk_encryption.system_volume is fail")
	assert.Less(t, strings.Index(page, "laptop-ana"), strings.Index(page, "web-01"), "worst first")
	shot("03-control-8.24")

	do("failing host", chromedp.Click(chromedp.CSS(`section.asset h2 a[href="/hosts/`+bad.ID+`"]`)),
		chromedp.WaitVisible(chromedp.ID("hist-h")))
	assert.Equal(t, s.URL+"/hosts/"+bad.ID, location())
	page = text()
	assert.Contains(t, page, "ssh.root_login is error", "checks that ended in error are shown")
	assert.Contains(t, page, "History")
	shot("04-host")

	do("evidence record", chromedp.Click(chromedp.CSS(`table.grid a[href^="/evidence/"]`)),
		chromedp.WaitVisible(chromedp.ID("proof-h")))
	assert.Contains(t, location(), "/evidence/")
	page = text()
	for _, want := range []string{"valid", "linked", "proved", "annexa.test/log"} {
		assert.Contains(t, page, want)
	}
	assert.NotContains(t, page, "not valid")
	shot("05-evidence")

	// Filters: the status select applies itself (a little JavaScript: the
	// change event SetValue fires submits the form).
	do("controls filtered", chromedp.Navigate(s.URL+"/controls"), chromedp.WaitVisible(chromedp.ID("c-status")),
		chromedp.SetValue(chromedp.ID("c-status"), "failing"),
		chromedp.WaitReady(chromedp.CSS(`option[value="failing"][selected]`)))
	assert.Contains(t, location(), "status=failing")
	page = text()
	assert.Contains(t, page, "8.24")
	assert.NotContains(t, page, "5.1 Policies for information security")
	shot("06-controls-failing")

	do("hosts search", chromedp.Navigate(s.URL+"/hosts"), chromedp.WaitVisible(chromedp.ID("h-q")),
		chromedp.SendKeys(chromedp.ID("h-q"), "web"), chromedp.Submit(chromedp.ID("h-q")),
		chromedp.WaitVisible(chromedp.CSS(`input#h-q[value="web"]`)))
	assert.Contains(t, location(), "q=web")
	page = text()
	assert.Contains(t, page, "web-01")
	assert.NotContains(t, page, "laptop-ana")
	shot("07-hosts")

	// As of 90 minutes ago the failing host still passed.
	at := now.Add(-90 * time.Minute).Format("2006-01-02T15:04")
	do("as of", chromedp.Navigate(s.URL+"/controls/8.24?at="+at), chromedp.WaitVisible(chromedp.CSS("p.banner")))
	page = text()
	assert.Contains(t, page, "laptop-ana")
	assert.NotContains(t, page, "is fail")
	assert.Contains(t, page, "0 failing")
	shot("08-control-as-of")

	// Export: the bundle downloads, and annexa verify accepts it.
	progress := chromedp.BrowserEvents(ctx, browser.DownloadProgress)
	do("export", chromedp.Navigate(s.URL+"/export"), chromedp.WaitVisible(chromedp.ID("ex-from")))
	shot("09-export")
	do("download", chromedp.Click(chromedp.CSS(`form[action="/export/bundle"] button`)))
	guid := ""
	for ev, err := range progress {
		require.NoError(t, err, "waiting for the bundle download")
		if ev.State == browser.DownloadProgressStateCompleted {
			guid = ev.GUID
			break
		}
		require.NotEqual(t, browser.DownloadProgressStateCanceled, ev.State, "the download was cancelled")
	}
	out, err := exec.Command(bin("annexa"), "verify", "--server-key", filepath.Join(s.Data, "server.pub"), filepath.Join(downloads, guid)).CombinedOutput()
	require.NoError(t, err, "annexa verify on the downloaded bundle:\n%s", out)

	// Administration: a new enroll token is shown once with the command.
	do("admin", chromedp.Navigate(s.URL+"/admin"), chromedp.WaitVisible(chromedp.ID("t-role")),
		chromedp.SendKeys(chromedp.ID("t-name"), "laptops"), chromedp.Submit(chromedp.ID("t-name")),
		chromedp.WaitVisible(chromedp.CSS("pre.secret")))
	assert.Contains(t, text(), "annexa-agent enroll --server")
	shot("10-admin-token")

	// The Statement of Applicability: exclude a control through its form,
	// then the printable document.
	do("soa edit", chromedp.Navigate(s.URL+"/soa/7.4"), chromedp.WaitVisible(chromedp.ID("s-app")),
		chromedp.SetValue(chromedp.ID("s-app"), "excluded"),
		chromedp.SendKeys(chromedp.ID("s-why"), "No premises of our own: fully remote"),
		chromedp.Submit(chromedp.ID("s-why")), chromedp.WaitVisible(chromedp.CSS("table.soa")))
	page = text()
	assert.Contains(t, page, "No premises of our own: fully remote")
	assert.Contains(t, page, "failing on 1 of 3 assets")
	shot("13-soa")
	do("soa print", chromedp.Navigate(s.URL+"/soa/print"), chromedp.WaitVisible(chromedp.CSS("table.soa-doc")))
	page = text()
	assert.Contains(t, page, "clause 6.1.3 d)")
	assert.Contains(t, page, "No (excluded)")
	shot("14-soa-print")
	pdf, err := chromedp.Run(ctx, chromedp.PrintToPDF())
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(shots, "14-soa-print.pdf"), pdf, 0o644))
	assert.True(t, bytes.HasPrefix(pdf, []byte("%PDF")), "the printable SoA prints")

	// Another framework through its mapping, in the browser.
	do("framework", chromedp.Navigate(s.URL+"/frameworks/iso27001-2013"), chromedp.WaitVisible(chromedp.CSS(`tr[id="r-A.10.1.1"]`)))
	page = text()
	assert.Contains(t, page, "ISO/IEC 27001:2013 Annex A")
	assert.Contains(t, page, "Policy on the use of cryptographic controls")
	shot("15-framework-iso27001-2013")
	do("attestations", chromedp.Navigate(s.URL+"/attestations"), chromedp.WaitVisible(chromedp.ID("a-status")))
	assert.Contains(t, text(), "annexa person init")
	shot("16-attestations")

	// A form posted without its CSRF token is refused.
	do("no csrf", chromedp.Navigate(s.URL+"/admin"), chromedp.WaitVisible(chromedp.ID("t-role")),
		chromedp.Evaluate[chromedp.Void](`document.querySelector('form[action="/admin/tokens"] input[name=csrf]').remove()`),
		chromedp.Submit(chromedp.ID("t-name")), chromedp.WaitVisible(chromedp.CSS("p.error")))
	assert.Contains(t, text(), "CSRF")

	// Sign out; a signed-out browser is sent to sign in again.
	do("sign out", chromedp.Navigate(s.URL+"/"), chromedp.WaitVisible(chromedp.CSS("form.signout button")),
		chromedp.Click(chromedp.CSS("form.signout button")), chromedp.WaitVisible(chromedp.ID("token")))
	assert.Contains(t, location(), "/signin")
	do("signed out again", chromedp.Navigate(s.URL+"/controls/8.24"), chromedp.WaitVisible(chromedp.ID("token")))
	assert.Contains(t, location(), "/signin")

	// An analyst is offered no export and may not open it.
	signIn(s.token("analyst", apiv1.TokenRequest{Name: "ana the analyst"}), "form.signout")
	links, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('a[href="/export"]').length`))
	require.NoError(t, err)
	assert.Zero(t, links, "an analyst is offered no export")
	shot("11-analyst-overview")
	do("analyst export", chromedp.Navigate(s.URL+"/export"), chromedp.WaitVisible(chromedp.CSS("p.error")))
	assert.Contains(t, text(), "may not open this page")

	// A phone-sized screen still reads.
	do("phone", chromedp.EmulateViewport(390, 844), chromedp.Navigate(s.URL+"/hosts/"+bad.ID), chromedp.WaitVisible(chromedp.ID("checks-h")))
	shot("12-host-phone")

	watch.mu.Lock()
	defer watch.mu.Unlock()
	assert.Empty(t, watch.errors, "console errors or exceptions on the dashboard's pages")
	assert.Empty(t, watch.foreign, "requests that left the server's origin")
	assert.Positive(t, watch.requests)
	t.Logf("screenshots in %s", shots)
}
