// Package server is Annexa's ingest server: it enrols agents, verifies and
// logs their signed records, keeps the fleet's compliance state per Annex A
// control, and answers queries about it.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sync/semaphore"

	"github.com/annexa-dev/annexa/configs"
	"github.com/annexa-dev/annexa/evidence"
	"github.com/annexa-dev/annexa/evidence/catalog"
	"github.com/annexa-dev/annexa/internal/atomicfile"
	"github.com/annexa-dev/annexa/server/apiv1"
	"github.com/annexa-dev/annexa/server/store"
)

// MinFreeBytes is the free space below which a SQLite server says it is not
// ready: ingest would fail on a full disk.
const MinFreeBytes = 64 << 20

// Config is what `annexa-server serve` is given.
type Config struct {
	DataDir  string
	Database string // empty: SQLite in DataDir
	Origin   string // the log's name; default annexa/<hostname>
	Mapping  string // check→control mapping file; empty: the shipped one
	// Frameworks is a directory of an organisation's own framework
	// mappings (<name>.csv), besides the shipped configs/frameworks.
	Frameworks string
	// Freshness is how long a result stays current unless the mapping says
	// otherwise for its check.
	Freshness time.Duration
	// MaxBody is the largest request body accepted, after decompression.
	MaxBody int64
	// MaxInflight bounds concurrent ingest requests; past it the server
	// answers 503 with Retry-After.
	MaxInflight int
	// IngestMemory bounds the decompressed bytes of all batches in flight
	// (reading or being stored); a batch that cannot get its bytes within
	// seconds is answered 503 with Retry-After.
	IngestMemory int64
	// UploadGrace is how long an upload may take before it must keep
	// MinUploadRate, and the longest any read of it may wait.
	UploadGrace time.Duration
	// WebhookInterval is how often webhook events are looked for and due
	// deliveries sent (default 5s); WebhookBackoff the wait after a first
	// failed attempt, doubling after each (default 10s); WebhookTimeout one
	// attempt's limit (default 10s).
	WebhookInterval, WebhookBackoff, WebhookTimeout time.Duration
	// SnapshotInterval is how often the state is snapshotted for
	// point-in-time queries (default 1h; negative: never, and ?at= reads
	// every result up to the instant).
	SnapshotInterval time.Duration
	// SnapshotRetention is how long snapshots are kept (0: always); an
	// instant before the oldest kept is answered from the results alone.
	SnapshotRetention time.Duration
	// PlainHTTP says the server answers over plain HTTP (--insecure-http):
	// the dashboard's cookies then go without the Secure attribute.
	PlainHTTP bool
	Logger    *slog.Logger
	Now       func() time.Time
}

// Server is a running ingest server's state.
type Server struct {
	cfg     Config
	db      *store.DB
	keys    *Keys
	catalog *catalog.Catalog
	// frameworks are the other frameworks' mappings onto Annex A, by name.
	frameworks map[string]*catalog.Framework
	mapping    *catalog.Mapping
	// mappingRaw is the mapping file's bytes, shipped in bundles so the
	// auditor recomputes the summary with the same mapping.
	mappingRaw []byte
	log        *slog.Logger
	metrics    *metrics
	inflight   chan struct{}
	busy       agentsBusy
	budget     *semaphore.Weighted
	signed     signedMark
	fleet      *fleetState
	committer  *committer
	trends     trendCache
	webhooks   *dispatcher
	snapshots  *snapshotter
	now        func() time.Time
	// AdminToken is the bootstrap admin token when this start created it
	// (first start only), so the caller can print it once.
	AdminToken string
}

// Open prepares a server: data directory, keys, database and migrations,
// catalog and mapping. It does not listen.
func Open(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("no data directory (--data)")
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Freshness == 0 {
		cfg.Freshness = 26 * time.Hour
	}
	if cfg.MaxBody == 0 {
		cfg.MaxBody = 16 << 20
	}
	if cfg.MaxInflight == 0 {
		cfg.MaxInflight = 64
	}
	if cfg.UploadGrace <= 0 {
		cfg.UploadGrace = UploadGrace
	}
	if cfg.IngestMemory <= 0 {
		cfg.IngestMemory = 64 << 20
	}
	if cfg.IngestMemory < cfg.MaxBody {
		return nil, fmt.Errorf("ingest memory (%d bytes) below the largest batch (%d bytes): no batch could be read", cfg.IngestMemory, cfg.MaxBody)
	}
	if cfg.Origin == "" {
		host, _ := os.Hostname()
		if host == "" {
			host = "localhost"
		}
		cfg.Origin = "annexa/" + host
	}
	cat, err := configs.Catalog()
	if err != nil {
		return nil, fmt.Errorf("annex A catalog: %w", err)
	}
	mapping, err := configs.Mapping(cat, cfg.Mapping)
	if err != nil {
		return nil, fmt.Errorf("check mapping: %w", err)
	}
	var mappingRaw []byte
	if cfg.Mapping == "" {
		mappingRaw, err = configs.FS.ReadFile("mapping.yaml")
	} else {
		mappingRaw, err = os.ReadFile(cfg.Mapping)
	}
	if err != nil {
		return nil, err
	}
	frameworks, err := configs.Frameworks(cat, cfg.Frameworks)
	if err != nil {
		return nil, fmt.Errorf("framework mappings: %w", err)
	}
	keys, _, err := loadOrCreateKeys(cfg.DataDir, cfg.Origin)
	if err != nil {
		return nil, fmt.Errorf("server keys: %w", err)
	}
	db, err := store.Open(ctx, cfg.Database, cfg.DataDir)
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg: cfg, db: db, keys: keys, catalog: cat, mapping: mapping, mappingRaw: mappingRaw, frameworks: frameworks, log: cfg.Logger,
		metrics: newMetrics(), inflight: make(chan struct{}, cfg.MaxInflight), now: cfg.Now,
		budget: semaphore.NewWeighted(cfg.IngestMemory),
	}
	s.fleet = newFleetState(mapping, cfg.Freshness, s.agentLabels)
	if err := s.bind(ctx); err != nil {
		db.Close()
		return nil, err
	}
	size, err := db.LogSize(ctx)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("log size: %w", err)
	}
	if err := s.checkNotBehind(size); err != nil {
		db.Close()
		return nil, err
	}
	if err := s.bootstrap(ctx); err != nil {
		db.Close()
		return nil, err
	}
	s.metrics.observeDB(db)
	if err := s.startWebhooks(ctx); err != nil {
		db.Close()
		return nil, err
	}
	s.committer = newCommitter(s)
	s.snapshots = s.startSnapshots()
	// Load the fleet's state now, not on the first dashboard request.
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		_ = s.withFleet(ctx, func(*fleetState) error { return nil })
	}()
	return s, nil
}

// bind ties the database to this server's keys: the first server to start
// records its public keys; a replica started with other keys is refused,
// because two keys signing one log would make both worthless.
func (s *Server) bind(ctx context.Context) error {
	for _, kv := range [][2]string{{"log_key", s.keys.LogVerifier}, {"enroll_key", s.keys.EnrollVerifier}} {
		k, v := kv[0], kv[1]
		have, err := s.db.SetMetaOnce(ctx, k, v)
		if err != nil {
			return err
		}
		if have != v {
			return fmt.Errorf("this database belongs to a server with %s %s, but %s holds %s: copy %s and %s from the first server's data directory",
				k, have, s.cfg.DataDir, v, LogKeyFile, EnrollKeyFile)
		}
	}
	return nil
}

// bootstrap creates the first admin token, once per database.
func (s *Server) bootstrap(ctx context.Context) error {
	if _, err := s.db.Meta(ctx, "bootstrapped"); err == nil {
		return nil
	}
	secret, tok, err := s.newToken(ctx, &store.Token{Role: RoleAdmin, Name: "bootstrap admin"})
	if err != nil {
		return err
	}
	if v, err := s.db.SetMetaOnce(ctx, "bootstrapped", tok.ID); err != nil {
		return err
	} else if v != tok.ID {
		// Another replica bootstrapped at the same moment; keep one token.
		return s.db.RevokeToken(ctx, tok.ID)
	}
	if err := atomicfile.Write(filepath.Join(s.cfg.DataDir, AdminFile), []byte(secret+"\n"), 0o600); err != nil {
		return err
	}
	s.AdminToken = secret
	return nil
}

// Keys returns the server's keys.
func (s *Server) Keys() *Keys { return s.keys }

// DB returns the store (for tests and tools in this module).
func (s *Server) DB() *store.DB { return s.db }

// Close releases the database.
func (s *Server) Close() error {
	s.webhooks.close()
	s.snapshots.close()
	s.committer.close()
	return s.db.Close()
}

// Handler is the server's HTTP API. Every /v1 handler returns its error to
// one error path (httpjson.go).
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, map[string]string{"status": "ok"}) })
	mux.HandleFunc("GET /readyz", s.handle(s.handleReady))
	mux.Handle("GET /metrics", s.metrics.handler())

	route := func(pattern string, h handlerFunc) { mux.HandleFunc(pattern, s.handle(h)) }
	route("POST /v1/enroll", s.handleEnroll)
	route("POST /v1/evidence", s.agentOnly(s.handleIngest))
	// People's attestations: the signature by a registered person's key is
	// the credential, and a document upload must hash to an attested one.
	route("POST /v1/attestations", s.handleAttest)
	route("PUT /v1/attestations/files/{sha256}", s.handleAttestedFileUpload)
	route("GET /v1/persons/by-key/{keyid}", s.handlePersonByKey)

	read := []string{RoleAdmin, RoleAnalyst, RoleAuditor}
	route("GET /v1/hosts", s.require(read, serveList(s.queryHosts)))
	route("GET /v1/hosts/{id}", s.require(read, serveOne(s.queryHost)))
	route("GET /v1/controls", s.require(read, serveList(s.queryControls)))
	route("GET /v1/controls/{id}", s.require(read, serveOne(s.queryControl)))
	route("GET /v1/evidence", s.require(read, serveList(s.queryEvidence)))
	route("GET /v1/history", s.require(read, serveList(s.queryHistory)))
	route("GET /v1/agents/{id}/keys", s.require(read, s.handleAgentKeys))

	route("GET /v1/attestations", s.require(read, serveList(s.queryAttestations)))
	route("GET /v1/attestations/files/{sha256}", s.require(read, s.handleAttestedFile))
	route("GET /v1/persons", s.require(read, serveList(s.queryPersons)))
	route("GET /v1/frameworks", s.require(read, serveList(s.queryFrameworks)))
	route("GET /v1/frameworks/{id}", s.require(read, serveOne(s.queryFramework)))
	route("GET /v1/soa", s.require(read, serveList(s.querySoA)))
	route("GET /v1/scope", s.require(read, serveList(s.queryScope)))
	route("GET /v1/soa/history", s.require(read, serveList(s.querySoAHistory)))

	route("GET /v1/export", s.require([]string{RoleAdmin, RoleAuditor}, s.handleExport))

	admin := []string{RoleAdmin}
	route("POST /v1/tokens", s.require(admin, s.handleTokenCreate))
	route("GET /v1/tokens", s.require(admin, s.handleTokenList))
	route("DELETE /v1/tokens/{id}", s.require(admin, s.handleTokenRevoke))
	route("POST /v1/agents/{id}/revoke", s.require(admin, s.handleAgentRevoke))
	route("GET /v1/agents/{id}/grants", s.anyPrincipal(s.handleGrants))
	route("GET /v1/checks", s.anyPrincipal(func(w http.ResponseWriter, _ *http.Request) error {
		writeJSON(w, http.StatusOK, apiv1.Checks{Checks: s.mapping.CheckIDs()})
		return nil
	}))
	route("POST /v1/persons", s.require(admin, s.handlePersonAdd))
	route("POST /v1/persons/{id}/revoke", s.require(admin, s.handlePersonRevoke))
	route("PUT /v1/soa/{id}", s.require(admin, s.handleSoAUpdate))
	route("PUT /v1/scope", s.require(admin, s.handleScopeSet))
	route("POST /v1/webhooks", s.require(admin, s.handleWebhookCreate))
	route("GET /v1/webhooks", s.require(admin, s.handleWebhookList))
	route("DELETE /v1/webhooks/{id}", s.require(admin, s.handleWebhookDelete))
	route("POST /v1/webhooks/{id}/test", s.require(admin, s.handleWebhookTest))
	route("GET /v1/webhooks/{id}/deliveries", s.require(admin, s.handleWebhookDeliveries))
	route("POST /v1/agents/{id}/grant", s.require(admin, s.handleGrant(evidence.Grant)))
	route("POST /v1/agents/{id}/ungrant", s.require(admin, s.handleGrant(evidence.Ungrant)))

	// The log is for anyone holding a credential: agents check their
	// receipts, auditors their proofs.
	route("GET /v1/log/checkpoint", s.anyPrincipal(s.handleCheckpoint))
	route("GET /v1/log/entries/{index}", s.anyPrincipal(s.handleEntry))
	route("GET /v1/log/proof/inclusion", s.anyPrincipal(s.handleInclusion))
	route("GET /v1/log/proof/consistency", s.anyPrincipal(s.handleConsistency))
	// The dashboard: every other path, on the same listener and TLS.
	if d, err := s.dashboard(s.cfg.PlainHTTP); err != nil {
		// The templates are embedded and parsed by the tests: this cannot
		// happen in a built binary, and the API must not go down with it.
		s.log.Error("dashboard unavailable", "err", err)
	} else {
		d.Register(mux)
	}
	mux.HandleFunc("GET /v1/server/keys", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte(s.keys.ServerPub()))
	})
	return s.logRequests(mux)
}

func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) error {
	// A real query, not a ping: a database that answers pings but not
	// queries is not ready; and on SQLite a full disk fails every ingest.
	if why := s.notReady(r.Context()); why != "" {
		s.log.Warn("not ready", "why", why)
		return clientError(http.StatusServiceUnavailable, apiv1.CodeNotReady, "%s", why)
	}
	writeJSON(w, 200, map[string]string{"status": "ready"})
	return nil
}

// logRequests gives each request an id (answered in X-Request-Id, logged
// with every failure) and logs it.
func (s *Server) logRequests(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := newRequestID()
		w.Header().Set("X-Request-Id", id)
		r = r.WithContext(context.WithValue(r.Context(), requestIDKey{}, id))
		sw := &statusWriter{ResponseWriter: w, status: 200}
		h.ServeHTTP(sw, r)
		s.log.LogAttrs(r.Context(), slog.LevelDebug, "request",
			slog.String("request_id", id), slog.String("method", r.Method), slog.String("path", r.URL.Path),
			slog.Int("status", sw.status), slog.Duration("took", time.Since(start)))
	})
}

// Mapping returns the check→control mapping in force.
func (s *Server) Mapping() *catalog.Mapping { return s.mapping }
