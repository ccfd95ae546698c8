package server_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/annexa-dev/annexa/client"
	"github.com/annexa-dev/annexa/evidence"
	"github.com/annexa-dev/annexa/server"
	"github.com/annexa-dev/annexa/server/apiv1"
	"github.com/annexa-dev/annexa/server/servertest"
)

// browser is a cookie-keeping HTTP client that does not follow redirects,
// so each test sees where a page sends it.
type browser struct {
	t    *testing.T
	base string
	c    *http.Client
}

func newBrowser(t *testing.T, base string) *browser {
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	return &browser{t: t, base: base, c: &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (b *browser) get(path string) (*http.Response, string) {
	b.t.Helper()
	resp, err := b.c.Get(b.base + path)
	require.NoError(b.t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(b.t, err)
	return resp, string(body)
}

func (b *browser) post(path string, form url.Values) (*http.Response, string) {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodPost, b.base+path, strings.NewReader(form.Encode()))
	require.NoError(b.t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := b.c.Do(req)
	require.NoError(b.t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(b.t, err)
	return resp, string(body)
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func csrfOf(t *testing.T, page string) string {
	t.Helper()
	m := csrfField.FindStringSubmatch(page)
	require.NotNil(t, m, "no CSRF field on the page")
	return m[1]
}

// signIn signs the browser in with token and returns the status and page
// the sign-in answered.
func (b *browser) signIn(token string) (*http.Response, string) {
	b.t.Helper()
	_, form := b.get("/signin")
	return b.post("/signin", url.Values{"csrf": {csrfOf(b.t, form)}, "token": {token}, "next": {"/"}})
}

func dashboardServer(t *testing.T) (*servertest.Server, *servertest.Agent, *servertest.Agent) {
	srv := servertest.New(t, server.Config{PlainHTTP: true})
	now := time.Now().UTC()
	good, bad := srv.Enrol("", "good-laptop"), srv.Enrol("", "bad-laptop")
	_, err := good.Ship(good.Record(now.Add(-time.Minute), map[string]evidence.Status{"disk_encryption.system_volume": evidence.Pass}))
	require.NoError(t, err)
	_, err = bad.Ship(bad.Record(now.Add(-2*time.Hour), map[string]evidence.Status{"disk_encryption.system_volume": evidence.Pass}))
	require.NoError(t, err)
	_, err = bad.Ship(bad.Record(now.Add(-time.Minute), map[string]evidence.Status{"disk_encryption.system_volume": evidence.Fail}))
	require.NoError(t, err)
	return srv, good, bad
}

func TestDashboardSignInAndPages(t *testing.T) {
	srv, _, bad := dashboardServer(t)
	b := newBrowser(t, srv.URL)

	// Signed out: every page sends the browser to sign in, and back after.
	resp, _ := b.get("/controls/8.24")
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	assert.Equal(t, "/signin?next=%2Fcontrols%2F8.24", resp.Header.Get("Location"))

	// The headers every page carries.
	resp, _ = b.get("/signin")
	assert.Contains(t, resp.Header.Get("Content-Security-Policy"), "script-src 'self'")
	assert.Contains(t, resp.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'")
	assert.Equal(t, "DENY", resp.Header.Get("X-Frame-Options"))

	resp, _ = b.signIn(srv.Admin)
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	var session *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "annexa_session" {
			session = c
		}
	}
	require.NotNil(t, session, "no session cookie")
	assert.True(t, session.HttpOnly)
	assert.Equal(t, http.SameSiteStrictMode, session.SameSite)
	assert.Positive(t, session.MaxAge, "a session has an expiry")
	assert.NotContains(t, session.Value, "anx_", "the cookie must not carry the token")

	resp, page := b.get("/")
	require.Equal(t, http.StatusOK, resp.StatusCode, page)
	assert.Contains(t, page, "Needs attention")
	assert.Contains(t, page, `href="/controls/8.24"`)

	resp, page = b.get("/controls/8.24")
	require.Equal(t, http.StatusOK, resp.StatusCode, page)
	assert.Contains(t, page, "bad-laptop")
	assert.Contains(t, page, "disk_encryption.system_volume is fail")
	assert.Regexp(t, `(?s)bad-laptop.*good-laptop`, page, "worst first")
	assert.Regexp(t, `(?s)<tr class="cause">\s*<td><code>disk_encryption.system_volume</code></td>\s*<td><span class="badge st-fail">`, page, "the check that set the status is marked")

	// 2013 ids find their 2022 control.
	_, page = b.get("/controls?q=A.10.1.1")
	assert.Contains(t, page, "8.24")
	assert.Contains(t, page, "is 8.24 in the 2022 Annex A")

	resp, page = b.get("/hosts?failing=true")
	require.Equal(t, http.StatusOK, resp.StatusCode, page)
	assert.Contains(t, page, "bad-laptop")
	assert.NotContains(t, page, "good-laptop")

	// The name search ignores case and takes % and _ literally.
	_, page = b.get("/hosts?q=BAD-Lap")
	assert.Contains(t, page, "bad-laptop")
	assert.NotContains(t, page, "good-laptop")
	_, page = b.get("/hosts?q=%25")
	assert.Contains(t, page, "No host matches")
	_, page = b.get("/hosts?q=_")
	assert.Contains(t, page, "No host matches")

	resp, page = b.get("/hosts/" + bad.ID)
	require.Equal(t, http.StatusOK, resp.StatusCode, page)
	assert.Contains(t, page, "History")
	assert.Regexp(t, `(?s)pass</span> → <span class="badge st-fail">fail`, page)
	idx := regexp.MustCompile(`/evidence/(\d+)`).FindStringSubmatch(page)
	require.NotNil(t, idx)

	resp, page = b.get("/evidence/" + idx[1])
	require.Equal(t, http.StatusOK, resp.StatusCode, page)
	assert.Contains(t, page, ">valid<")
	assert.Contains(t, page, ">linked<")
	assert.Contains(t, page, ">proved<")

	// As of two hours ago less a minute, the failing host still passed.
	at := time.Now().UTC().Add(-90 * time.Minute).Format("2006-01-02T15:04")
	resp, page = b.get("/controls/8.24?at=" + url.QueryEscape(at))
	require.Equal(t, http.StatusOK, resp.StatusCode, page)
	assert.Contains(t, page, "Showing the fleet as it was at")
	assert.NotContains(t, page, "is fail")
	assert.Contains(t, page, `at=`+url.QueryEscape(at), "links keep the instant")

	// Unknown ids and bad instants are errors that say so, not empty pages.
	resp, page = b.get("/controls/9.99")
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
	assert.Contains(t, page, "unknown control")
	resp, _ = b.get("/hosts?at=yesterday")
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)

	// Sign out ends the session: the old cookie opens nothing.
	_, page = b.get("/")
	resp, _ = b.post("/signout", url.Values{"csrf": {csrfOf(t, page)}})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	replay := newBrowser(t, srv.URL)
	u, _ := url.Parse(srv.URL)
	replay.c.Jar.SetCookies(u, []*http.Cookie{{Name: "annexa_session", Value: session.Value}})
	resp, _ = replay.get("/")
	assert.Equal(t, http.StatusSeeOther, resp.StatusCode)
}

func TestDashboardRolesAndForms(t *testing.T) {
	srv, _, bad := dashboardServer(t)

	// An enroll token cannot sign in, and says why.
	b := newBrowser(t, srv.URL)
	resp, page := b.signIn(srv.Token(server.RoleEnroll, apiv1.TokenRequest{}))
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	assert.Contains(t, page, "an enroll token only enrols agents")

	// An analyst reads but is offered no export, and may not open it.
	analyst := newBrowser(t, srv.URL)
	resp, _ = analyst.signIn(srv.Token(server.RoleAnalyst, apiv1.TokenRequest{}))
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	_, page = analyst.get("/")
	assert.NotContains(t, page, `href="/export"`)
	assert.NotContains(t, page, `href="/admin"`)
	resp, _ = analyst.get("/export")
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)
	resp, _ = analyst.get("/export/bundle?from=2020-01-01&to=2030-01-01")
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)

	// An auditor exports; the bundle streams.
	auditor := newBrowser(t, srv.URL)
	auditor.signIn(srv.Token(server.RoleAuditor, apiv1.TokenRequest{}))
	_, page = auditor.get("/export")
	assert.Contains(t, page, "annexa verify --server-key server.pub")
	from, to := time.Now().UTC().AddDate(0, 0, -1).Format("2006-01-02"), time.Now().UTC().AddDate(0, 0, 1).Format("2006-01-02")
	resp, body := auditor.get("/export/bundle?from=" + from + "&to=" + to + "&control=8.24")
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	assert.Equal(t, "application/gzip", resp.Header.Get("Content-Type"))
	assert.Contains(t, resp.Header.Get("Content-Disposition"), "annexa-")
	assert.Greater(t, len(body), 1000)
	resp, _ = auditor.get("/admin")
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)

	// An admin's form without the CSRF token is refused, and changes nothing.
	admin := newBrowser(t, srv.URL)
	admin.signIn(srv.Admin)
	resp, page = admin.post("/admin/tokens", url.Values{"role": {"analyst"}, "name": {"no-csrf"}})
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)
	assert.Contains(t, page, "CSRF")
	toks, err := srv.DB().Tokens(context.Background())
	require.NoError(t, err)
	for _, tk := range toks {
		assert.NotEqual(t, "no-csrf", tk.Name)
	}

	// With it: an enroll token, shown once with the command to paste.
	_, page = admin.get("/admin")
	resp, page = admin.post("/admin/tokens", url.Values{"csrf": {csrfOf(t, page)}, "role": {"enroll"}, "name": {"laptops"}, "max_uses": {"3"}, "labels": {"env=prod"}})
	require.Equal(t, http.StatusCreated, resp.StatusCode, page)
	assert.Contains(t, page, "annexa-agent enroll --server")
	assert.Regexp(t, `--token anx_`, page)
	// Labels on a read token are refused, as the API refuses them.
	resp, page = admin.post("/admin/tokens", url.Values{"csrf": {csrfOf(t, page)}, "role": {"auditor"}, "labels": {"team=finance"}})
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	assert.Contains(t, page, "labels apply to enroll tokens only")

	// Revoking an agent from its page.
	_, page = admin.get("/hosts/" + bad.ID)
	resp, _ = admin.post("/admin/agents/"+bad.ID+"/revoke", url.Values{"csrf": {csrfOf(t, page)}})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	_, page = admin.get("/hosts/" + bad.ID)
	assert.Contains(t, page, ">revoked<")

	// A token revoked while signed in ends its sessions.
	tok := srv.Token(server.RoleAnalyst, apiv1.TokenRequest{Name: "soon revoked"})
	late := newBrowser(t, srv.URL)
	late.signIn(tok)
	resp, _ = late.get("/")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	toks, err = srv.DB().Tokens(context.Background())
	require.NoError(t, err)
	for _, tk := range toks {
		if tk.Name == "soon revoked" {
			require.NoError(t, srv.DB().RevokeToken(context.Background(), tk.ID))
		}
	}
	resp, _ = late.get("/")
	assert.Equal(t, http.StatusSeeOther, resp.StatusCode)
}

func TestDashboardSignInIsRateLimited(t *testing.T) {
	srv := servertest.New(t, server.Config{PlainHTTP: true})
	// A sign-in form posted without its cookie pair (from another site) is refused.
	other := newBrowser(t, srv.URL)
	resp, _ := other.post("/signin", url.Values{"csrf": {"made-up"}, "token": {srv.Admin}})
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)

	b := newBrowser(t, srv.URL)
	for range 5 {
		resp, page := b.signIn("anx_wrong")
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode, page)
		assert.Contains(t, page, "unknown token")
	}
	// Even the right token waits once the address is blocked.
	resp, page := b.signIn(srv.Admin)
	assert.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
	assert.Contains(t, page, "Too many failed sign-ins")
	assert.NotEmpty(t, resp.Header.Get("Retry-After"))
	assert.Contains(t, srv.Log.String(), "dashboard sign-in failed")

}

func TestDashboardStatementOfApplicability(t *testing.T) {
	srv, _, _ := dashboardServer(t)
	admin := newBrowser(t, srv.URL)
	admin.signIn(srv.Admin)

	resp, page := admin.get("/soa")
	require.Equal(t, http.StatusOK, resp.StatusCode, page)
	assert.Contains(t, page, "failing on 1 of 2 assets")
	assert.Contains(t, page, `href="/soa/8.24"`, "an admin may edit")
	assert.Equal(t, 93, strings.Count(page, `<tr id="c-`))

	// Excluding without a justification: the form comes back with why.
	_, form := admin.get("/soa/7.4")
	resp, page = admin.post("/soa/7.4", url.Values{"csrf": {csrfOf(t, form)}, "applicable": {"excluded"}, "status": {""}, "owner": {""}, "justification": {""}})
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	assert.Contains(t, page, "needs a justification")
	resp, _ = admin.post("/soa/7.4", url.Values{"csrf": {csrfOf(t, form)}, "applicable": {"excluded"}, "status": {""}, "owner": {"facilities"}, "justification": {"No premises: fully remote"}})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	_, page = admin.get("/soa?flagged=1")
	assert.NotContains(t, page, `id="c-7.4"`, "excluded without evidence: no flag")
	_, page = admin.get("/soa")
	assert.Contains(t, page, "No premises: fully remote")
	assert.Contains(t, page, "Latest changes")

	// The printable document: every control, no navigation.
	resp, page = admin.get("/soa/print")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.NotContains(t, page, `<nav`)
	assert.Contains(t, page, "clause 6.1.3 d)")
	assert.Equal(t, 93, strings.Count(page, "<tr>\n<td><strong>"))

	// An auditor reads it, may not edit it.
	auditor := newBrowser(t, srv.URL)
	auditor.signIn(srv.Token(server.RoleAuditor, apiv1.TokenRequest{}))
	resp, page = auditor.get("/soa")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.NotContains(t, page, `href="/soa/8.24"`)
	resp, _ = auditor.get("/soa/8.24")
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)
}

func TestDashboardISMSScope(t *testing.T) {
	srv := servertest.New(t, server.Config{PlainHTTP: true})
	for _, h := range []struct{ name, env string }{{"prod-box", "prod"}, {"dev-box", "dev"}} {
		a := srv.Enrol(srv.Token(server.RoleEnroll, apiv1.TokenRequest{Labels: map[string]string{"env": h.env}}), h.name)
		_, err := a.Ship(a.Record(time.Now().UTC(), map[string]evidence.Status{"disk_encryption.system_volume": evidence.Fail}))
		require.NoError(t, err)
	}
	require.NoError(t, srv.Client(srv.Admin).Do(context.Background(), http.MethodPut, "/v1/scope", nil, apiv1.Scope{Selector: "env=prod"}, nil))
	b := newBrowser(t, srv.URL)
	b.signIn(srv.Token(server.RoleAuditor, apiv1.TokenRequest{}))
	_, page := b.get("/")
	assert.Contains(t, page, "ISMS scope: <code>env=prod</code> (1 agents)")
	_, page = b.get("/hosts?in_scope=true")
	assert.Contains(t, page, "prod-box")
	assert.NotContains(t, page, "dev-box")
	_, page = b.get("/controls/8.24?in_scope=true")
	assert.Contains(t, page, "1 assets: 1 failing")
	_, page = b.get("/soa/print")
	assert.Contains(t, page, "agents labelled <code>env=prod</code>")
}

// A control's page lists the people who attest it, with the document to
// download (never rendered in the dashboard's origin); the SoA counts them.
func TestDashboardAttestations(t *testing.T) {
	srv, _, _ := dashboardServer(t)
	alice, _ := person(t, srv, "Alice Martin", "ciso")
	doc := filepath.Join(t.TempDir(), "policy.html")
	require.NoError(t, os.WriteFile(doc, []byte("<script>alert(1)</script>"), 0o600))
	res, err := srv.Client("").Attest(context.Background(), alice, client.Attestation{Controls: []string{"5.1"}, Statement: "Policy v3 approved by the board",
		File: doc, ValidFor: 365 * 24 * time.Hour, Upload: true}, time.Now())
	require.NoError(t, err)
	require.True(t, res.Uploaded)

	auditor := newBrowser(t, srv.URL)
	auditor.signIn(srv.Token(server.RoleAuditor, apiv1.TokenRequest{}))
	resp, page := auditor.get("/controls/5.1")
	require.Equal(t, http.StatusOK, resp.StatusCode, page)
	assert.Contains(t, page, "Alice Martin")
	assert.Contains(t, page, "Policy v3 approved by the board")
	assert.Contains(t, page, `href="/attestations/files/`+res.SHA256+`"`)
	resp, page = auditor.get("/attestations/files/" + res.SHA256)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "<script>alert(1)</script>", page)
	assert.Contains(t, resp.Header.Get("Content-Disposition"), "attachment")
	assert.Contains(t, resp.Header.Get("Content-Security-Policy"), "sandbox")
	_, page = auditor.get("/controls")
	assert.Contains(t, page, "5.1")
	_, page = auditor.get("/soa")
	assert.Contains(t, page, "attested by 1")
	resp, page = auditor.get("/attestations")
	require.Equal(t, http.StatusOK, resp.StatusCode, page)
	assert.Contains(t, page, "Policy v3 approved by the board")
	assert.Contains(t, page, "ciso")
	_, page = auditor.get("/attestations?status=expired")
	assert.NotContains(t, page, "Policy v3 approved by the board")
	resp, page = auditor.get("/evidence/" + strconv.FormatInt(res.Index, 10))
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, page, "ed25519 over the DSSE PAE", "the attestation's signature checks under the person's key")
}

// Another framework's requirements through its mapping: the shipped ISO
// 27001:2013 Annex A, in the dashboard and the API alike.
func TestDashboardFrameworks(t *testing.T) {
	srv, _, _ := dashboardServer(t)
	analyst := newBrowser(t, srv.URL)
	analyst.signIn(srv.Token(server.RoleAnalyst, apiv1.TokenRequest{}))
	resp, page := analyst.get("/frameworks")
	require.Equal(t, http.StatusOK, resp.StatusCode, page)
	assert.Contains(t, page, `href="/frameworks/iso27001-2013"`)
	assert.Contains(t, page, "ISO/IEC 27002:2022, Annex B")
	resp, page = analyst.get("/frameworks/iso27001-2013")
	require.Equal(t, http.StatusOK, resp.StatusCode, page)
	assert.Equal(t, 114, strings.Count(page, `<tr id="r-`))
	var st apiv1.FrameworkState
	require.NoError(t, srv.Client(srv.Admin).Do(context.Background(), http.MethodGet, "/v1/frameworks/iso27001-2013", nil, nil, &st))
	byID := map[string]apiv1.RequirementState{}
	for _, r := range st.Requirements {
		byID[r.ID] = r
	}
	// A.10.1.1 (cryptographic controls) is 8.24, which one of the two
	// hosts fails; A.5.1.1 (policies) has no evidence.
	assert.Equal(t, "failing", byID["A.10.1.1"].Status)
	assert.Equal(t, "not_covered", byID["A.5.1.1"].Status)
	assert.Contains(t, page, `<tr id="r-A.10.1.1">`)
	resp, _ = analyst.get("/frameworks/nist-csf-9")
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
}
