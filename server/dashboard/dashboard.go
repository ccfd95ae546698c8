// Package dashboard is Annexa's web interface: server-rendered pages over
// the same query functions as the /v1 API, for the security team (overview,
// controls, hosts, evidence) and the auditor (evidence records with their
// proofs, bundle export). It needs nothing outside the server's binary:
// templates and assets are embedded, pages work without JavaScript, and
// no page makes a request to any other origin.
package dashboard

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Roles that may sign in, and what each may do beyond reading.
const (
	RoleAdmin   = "admin"
	RoleAnalyst = "analyst"
	RoleAuditor = "auditor"
	RoleEnroll  = "enroll"
)

// Options configure a dashboard.
type Options struct {
	Logger *slog.Logger
	Now    func() time.Time
	// SessionTTL is how long a sign-in lasts (default 8 hours).
	SessionTTL time.Duration
	// MaxFailures failed sign-ins from one address in FailureWindow block
	// that address until the window ends (defaults 5 in 5 minutes).
	MaxFailures   int
	FailureWindow time.Duration
	// Insecure drops the Secure attribute from cookies, for a server on
	// plain HTTP behind nothing (local tests only).
	Insecure bool
}

// Dashboard serves the pages.
type Dashboard struct {
	b        Backend
	log      *slog.Logger
	now      func() time.Time
	sessions *sessions
	limit    *limiter
	insecure bool
	pages    map[string]*template.Template
}

// New builds a dashboard over b.
func New(b Backend, o Options) (*Dashboard, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.SessionTTL <= 0 {
		o.SessionTTL = 8 * time.Hour
	}
	if o.MaxFailures <= 0 {
		o.MaxFailures = 5
	}
	if o.FailureWindow <= 0 {
		o.FailureWindow = 5 * time.Minute
	}
	d := &Dashboard{b: b, log: o.Logger, now: o.Now, sessions: newSessions(o.SessionTTL),
		limit: newLimiter(o.MaxFailures, o.FailureWindow), insecure: o.Insecure, pages: map[string]*template.Template{}}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		base := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if base == "layout" {
			continue
		}
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", n)
		if err != nil {
			return nil, fmt.Errorf("dashboard template %s: %w", n, err)
		}
		d.pages[base] = t
	}
	return d, nil
}

// Register adds the dashboard's routes to mux: pages at /, assets at
// /static/. The API stays under /v1/.
func (d *Dashboard) Register(mux *http.ServeMux) {
	static, _ := fs.Sub(staticFS, "static")
	files := http.StripPrefix("/static/", http.FileServerFS(static))
	mux.Handle("GET /static/", d.secure(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		files.ServeHTTP(w, r)
	})))
	mux.Handle("GET /signin", d.secure(d.handle(d.signinForm)))
	mux.Handle("POST /signin", d.secure(d.handle(d.signin)))
	mux.Handle("POST /signout", d.secure(d.user(nil, d.signout)))

	read := []string{RoleAdmin, RoleAnalyst, RoleAuditor}
	mux.Handle("GET /{$}", d.secure(d.user(read, d.overview)))
	mux.Handle("GET /controls", d.secure(d.user(read, d.controls)))
	mux.Handle("GET /controls/{id}", d.secure(d.user(read, d.control)))
	mux.Handle("GET /hosts", d.secure(d.user(read, d.hosts)))
	mux.Handle("GET /hosts/{id}", d.secure(d.user(read, d.host)))
	mux.Handle("GET /evidence/{index}", d.secure(d.user(read, d.record)))
	mux.Handle("GET /attestations/files/{sha256}", d.secure(d.user(read, d.attestedFile)))
	mux.Handle("GET /attestations", d.secure(d.user(read, d.attestations)))
	mux.Handle("GET /frameworks", d.secure(d.user(read, d.frameworks)))
	mux.Handle("GET /frameworks/{name}", d.secure(d.user(read, d.framework)))
	mux.Handle("GET /soa", d.secure(d.user(read, d.soa)))
	mux.Handle("GET /soa/print", d.secure(d.user(read, d.soaPrint)))

	export := []string{RoleAdmin, RoleAuditor}
	mux.Handle("GET /export", d.secure(d.user(export, d.exportForm)))
	mux.Handle("GET /export/bundle", d.secure(d.user(export, d.exportBundle)))

	admin := []string{RoleAdmin}
	mux.Handle("GET /admin", d.secure(d.user(admin, d.admin)))
	mux.Handle("POST /admin/tokens", d.secure(d.user(admin, d.tokenCreate)))
	mux.Handle("POST /admin/tokens/{id}/revoke", d.secure(d.user(admin, d.tokenRevoke)))
	mux.Handle("POST /admin/agents/{id}/revoke", d.secure(d.user(admin, d.agentRevoke)))
	mux.Handle("GET /soa/{id}", d.secure(d.user(admin, d.soaEdit)))
	mux.Handle("POST /soa/{id}", d.secure(d.user(admin, d.soaSave)))
}

// csp allows the server's own scripts, styles and images and nothing
// else: no inline script, no other origin, no framing.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// secure sets the headers every dashboard response carries.
func (d *Dashboard) secure(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", csp)
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("Cross-Origin-Opener-Policy", "same-origin")
		if !d.insecure {
			hd.Set("Strict-Transport-Security", "max-age=31536000")
		}
		h.ServeHTTP(w, r)
	})
}

// pageFunc renders a page for a request; it returns the error to show.
type pageFunc func(w http.ResponseWriter, r *http.Request, p *page) error

func (d *Dashboard) handle(fn pageFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := d.newPage(r, nil, nil)
		if err := fn(w, r, p); err != nil {
			d.fail(w, r, p, err)
		}
	})
}

// user admits a signed-in browser whose token has one of roles (any role
// when roles is nil); a browser that is not signed in goes to the sign-in
// page, and comes back where it was going. Every POST must carry the
// session's CSRF token and come from this origin.
func (d *Dashboard) user(roles []string, fn pageFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		now := d.now()
		var sess *session
		if c, err := r.Cookie(sessionCookie); err == nil {
			sess = d.sessions.get(c.Value, now)
		}
		var who *Principal
		if sess != nil {
			var err error
			who, err = d.b.Principal(r.Context(), sess.tokenID)
			if err != nil {
				if !errors.Is(err, ErrCredential) {
					d.fail(w, r, d.newPage(r, nil, nil), err)
					return
				}
				d.log.Info("dashboard session ended: its token no longer signs in", "token", sess.tokenID, "why", err)
				d.sessions.end(sess.id)
				who = nil
			}
		}
		if who == nil {
			if r.Method != http.MethodGet {
				http.Error(w, "not signed in", http.StatusUnauthorized)
				return
			}
			http.Redirect(w, r, "/signin?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		r = r.WithContext(WithPrincipal(r.Context(), who))
		p := d.newPage(r, who, sess)
		if r.Method == http.MethodPost {
			if err := d.checkPost(r, sess.csrf); err != nil {
				d.log.Warn("dashboard form refused", "path", r.URL.Path, "token", who.TokenID, "why", err)
				d.fail(w, r, p, forbidden("%v", err))
				return
			}
		}
		if roles != nil && !slices.Contains(roles, who.Role) {
			d.fail(w, r, p, forbidden("a %s token may not open this page", who.Role))
			return
		}
		if err := fn(w, r, p); err != nil {
			d.fail(w, r, p, err)
		}
	})
}

// checkPost refuses a form without the expected CSRF token, or sent from
// another origin.
func (d *Dashboard) checkPost(r *http.Request, want string) error {
	if o := r.Header.Get("Origin"); o != "" && o != "null" {
		u, err := url.Parse(o)
		if err != nil || u.Host != r.Host {
			return fmt.Errorf("form sent from another origin (%s)", o)
		}
	}
	if err := r.ParseForm(); err != nil {
		return fmt.Errorf("form: %w", err)
	}
	if !sameSecret(r.PostForm.Get("csrf"), want) {
		return errors.New("the form's CSRF token is missing or wrong: reload the page and try again")
	}
	return nil
}

// pageError is an error with the status it answers.
type pageError struct {
	status int
	msg    string
}

func (e *pageError) Error() string { return e.msg }

func forbidden(format string, args ...any) error {
	return &pageError{status: http.StatusForbidden, msg: fmt.Sprintf(format, args...)}
}

func badRequest(format string, args ...any) error {
	return &pageError{status: http.StatusBadRequest, msg: fmt.Sprintf(format, args...)}
}

// fail shows an error page: the backend's own message for what the
// request got wrong, and for anything else a generic one (the cause goes
// to the log, never to the browser).
func (d *Dashboard) fail(w http.ResponseWriter, r *http.Request, p *page, err error) {
	status, msg := http.StatusInternalServerError, "internal error; the server's log has the cause"
	var pe *pageError
	var st Status
	switch {
	case errors.As(err, &pe):
		status, msg = pe.status, pe.msg
	case errors.As(err, &st):
		status, msg = st.HTTPStatus(), st.Message()
	case errors.Is(err, context.Canceled):
		return
	default:
		d.log.Error("dashboard page failed", "path", r.URL.Path, "err", err)
	}
	p.Title = http.StatusText(status)
	p.Data = struct {
		Status  int
		Message string
	}{status, msg}
	d.render(w, status, "error", p)
}

// asStatus is errors.As for the backend's Status errors.
func asStatus(err error, st *Status) bool { return errors.As(err, st) }

// render executes a page into a buffer first, so a template error becomes
// an error page instead of half a page.
func (d *Dashboard) render(w http.ResponseWriter, status int, name string, p *page) {
	t := d.pages[name]
	var b strings.Builder
	if err := t.Execute(&b, p); err != nil {
		d.log.Error("dashboard render", "page", name, "err", err)
		http.Error(w, "internal error rendering the page", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(b.String()))
}

// clientAddr is the address failed sign-ins are counted against.
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func (d *Dashboard) cookie(name, value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: name, Value: value, Path: "/", MaxAge: maxAge, HttpOnly: true, Secure: !d.insecure, SameSite: http.SameSiteStrictMode}
}
