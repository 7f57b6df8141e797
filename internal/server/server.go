// Package server is Custodia's HTTP edge: it mounts the route table behind
// TLS, applies each route's declared permission and the seal gate, sets the
// security headers, caps bodies, assigns request IDs, logs, counts, and
// shuts down gracefully.
//
// It must never log a request body, a query string or an Authorization
// header.
package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/custodia-project/custodia/internal/api"
	"github.com/custodia-project/custodia/internal/audit"
	"github.com/custodia-project/custodia/internal/authz"
	"github.com/custodia-project/custodia/internal/fault"
	"github.com/custodia-project/custodia/internal/store"
)

// Authenticator resolves bearer tokens.
type Authenticator interface {
	Authenticate(ctx context.Context, token string) (*authz.Principal, error)
	// GrantUsed records that a grant authorized a request.
	GrantUsed(ctx context.Context, grantID string)
}

// Options are the edge's limits.
type Options struct {
	MaxBodyBytes      int64
	MaxHeaderBytes    int
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
	ShutdownTimeout   time.Duration
	// MetricsPublic serves /metrics without a token.
	MetricsPublic bool
}

// Deps are what the edge needs beyond the routes.
type Deps struct {
	Log      *slog.Logger
	Auth     Authenticator
	Sealed   func() bool
	Store    store.Store // for recording denials
	Now      func() time.Time
	Registry *prometheus.Registry
	// ResolveTenant turns a route's tenant reference (ID or slug) into the
	// tenant ID; ok is false when no tenant has it.
	ResolveTenant func(ctx context.Context, ref string) (id string, ok bool)
}

// Server is the HTTP edge.
type Server struct {
	opts    Options
	d       Deps
	handler http.Handler
	csrf    *http.CrossOriginProtection

	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	// stale counts Confirms requests run again because what they were
	// served from caches had gone stale.
	stale prometheus.Counter
}

// New builds the edge over routes. It fails if a route lacks a known
// permission, so no route can be mounted unguarded.
func New(opts Options, d Deps, routes []api.Route) (*Server, error) {
	if d.Now == nil {
		d.Now = time.Now
	}
	s := &Server{opts: opts, d: d, csrf: http.NewCrossOriginProtection()}
	s.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "custodia_http_requests_total", Help: "HTTP requests by route and status code.",
	}, []string{"route", "code"})
	s.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "custodia_http_request_duration_seconds", Help: "HTTP request latency by route.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
	}, []string{"route"})
	s.stale = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "custodia_stale_cache_reruns_total",
		Help: "Requests run again without caches because what a cache served them had been changed by another node.",
	})
	d.Registry.MustRegister(s.requests, s.duration, s.stale)

	mux := http.NewServeMux()
	paths := map[string][]string{}
	for _, rt := range routes {
		if err := CheckRoute(rt); err != nil {
			return nil, err
		}
		mux.Handle(rt.Method+" "+rt.Pattern, s.wrap(rt))
		paths[rt.Pattern] = append(paths[rt.Pattern], rt.Method)
	}
	for p, methods := range paths {
		allow := strings.Join(methods, ", ")
		mux.Handle(p, s.serve("unmatched", false, strings.HasPrefix(p, "/v1/"), func(w http.ResponseWriter, r *http.Request, _ string) error {
			w.Header().Set("Allow", allow)
			return fault.New(fault.MethodNotAllowed, "method_not_allowed", "method not allowed; allowed: %s", allow)
		}))
	}
	if _, ok := paths["/"]; !ok {
		mux.Handle("/", s.serve("unmatched", false, false, func(w http.ResponseWriter, r *http.Request, _ string) error {
			return fault.New(fault.NotFound, "not_found", "no such route")
		}))
	}
	if _, ok := paths["/v1/"]; !ok {
		mux.Handle("/v1/", s.serve("unmatched", false, true, func(w http.ResponseWriter, r *http.Request, _ string) error {
			return fault.New(fault.NotFound, api.NoRoute, "no handler for %s: Custodia serves KV version 2 at secret/ and a few auth and sys paths (docs/api.md)", r.URL.Path)
		}))
	}
	s.handler = mux
	return s, nil
}

var methodRE = regexp.MustCompile(`^(GET|POST|PUT|PATCH|DELETE|LIST)$`)

// CheckRoute refuses a route without a handler or a known permission.
func CheckRoute(rt api.Route) error {
	if !methodRE.MatchString(rt.Method) || !strings.HasPrefix(rt.Pattern, "/") {
		return fmt.Errorf("server: route %q %q: bad method or pattern", rt.Method, rt.Pattern)
	}
	if rt.Handler == nil {
		return fmt.Errorf("server: route %s %s has no handler", rt.Method, rt.Pattern)
	}
	if !slices.Contains(authz.All, rt.Perm) {
		return fmt.Errorf("server: route %s %s declares no known permission (%q)", rt.Method, rt.Pattern, rt.Perm)
	}
	if rt.TenantParam != "" && !strings.Contains(rt.Pattern, "{"+rt.TenantParam+"}") {
		return fmt.Errorf("server: route %s %s names tenant parameter %q that is not in its pattern", rt.Method, rt.Pattern, rt.TenantParam)
	}
	return nil
}

// Handler is the whole edge as an http.Handler.
func (s *Server) Handler() http.Handler { return s.handler }

var requestIDRE = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.status, w.wrote = http.StatusOK, true
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func securityHeaders(h http.Header) {
	h.Set("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
}

func (s *Server) wrap(rt api.Route) http.Handler {
	label := rt.Method + " " + rt.Pattern
	h := s.guard(rt)
	if rt.Confirms {
		return s.serve(label, rt.Quiet, rt.Vault, func(w http.ResponseWriter, r *http.Request, rid string) error {
			return s.confirming(w, r, rid, h)
		})
	}
	return s.serve(label, rt.Quiet, rt.Vault, h)
}

// confirming runs a Confirms route's handler h allowing it values from
// caches that are only provisionally current (store.Confirm): its writes
// confirm them first, and so does an error it ends in. When they had gone
// stale, h runs again with caches off, on the same body.
func (s *Server) confirming(w http.ResponseWriter, r *http.Request, rid string, h handler) error {
	if cf, ok := s.d.Store.(store.Confirmer); !ok || !cf.StampLags() {
		return h(w, r, rid) // its caches, if any, need no confirming
	}
	body, err := io.ReadAll(r.Body) // bounded by serve
	if err != nil {
		return err
	}
	run := func(ctx context.Context) error {
		rr := r.WithContext(ctx)
		rr.Body = io.NopCloser(bytes.NewReader(body))
		return h(w, rr, rid)
	}
	ctx := store.WithConfirm(r.Context())
	err = run(ctx)
	if err == nil {
		return nil
	}
	if sw, ok := w.(*statusWriter); ok && sw.wrote {
		return err
	}
	if !errors.Is(err, store.ErrStale) && store.ConfirmReads(ctx, s.d.Store) == nil {
		return err
	}
	s.stale.Inc()
	return run(r.Context())
}

// handler is a route's handler inside serve.
type handler = func(w http.ResponseWriter, r *http.Request, rid string) error

// guard returns rt's handler behind the checks every route passes: sealed,
// cross-origin, authentication, permission.
func (s *Server) guard(rt api.Route) handler {
	return func(w http.ResponseWriter, r *http.Request, rid string) error {
		if rt.Unsealed && s.d.Sealed() {
			return fault.ErrSealed
		}
		// Browsers say where a request comes from; a state change from
		// another site is refused whatever credential it carries.
		if err := s.csrf.Check(r); err != nil {
			return fault.New(fault.Forbidden, "cross_origin", "cross-origin request refused")
		}
		perm := rt.Perm
		if perm == authz.Metrics && s.opts.MetricsPublic {
			perm = authz.Public
		}
		p, err := s.authenticate(r, rt.Vault)
		if err != nil {
			if perm != authz.Public {
				return err
			}
			// A stale token must not lock an operator out of unsealing.
			p = nil
		}
		if p != nil {
			src := audit.SourceFrom(r.Context())
			src.ActorType, src.ActorID = actorType(p.Kind), p.ID
			*r = *r.WithContext(authz.WithPrincipal(audit.WithSource(r.Context(), src), p))
		}
		tenantID := ""
		if rt.Vault && p.Tenant() {
			// Vault's API names no tenant: a token's own tenant is its
			// "secret" mount.
			tenantID = p.TenantID
			*r = *r.WithContext(api.WithTenantID(r.Context(), tenantID))
		}
		if rt.TenantParam != "" {
			tenantID = r.PathValue(rt.TenantParam)
			if p.Tenant() && s.d.ResolveTenant != nil {
				// A tenant principal names its tenant by ID or slug; a
				// reference to no tenant is simply not its own.
				if id, ok := s.d.ResolveTenant(r.Context(), tenantID); ok {
					tenantID = id
					*r = *r.WithContext(api.WithTenantID(r.Context(), id))
				}
			}
		}
		if !authz.Allow(p, perm, tenantID, s.d.Now()) {
			if p == nil {
				return fault.ErrUnauthenticated
			}
			s.recordDenial(r, rt, p, tenantID)
			code, msg := authz.Denial(p, perm, tenantID)
			return fault.New(fault.Forbidden, code, "%s", msg)
		}
		if tenantID != "" && p.Tenant() && !p.Base(perm) {
			if id, _ := authz.Check(p, perm, tenantID, authz.Resource{Type: authz.ResourceTenant, ID: tenantID}, s.d.Now()); id != "" {
				s.d.Auth.GrantUsed(r.Context(), id)
			}
		}
		return rt.Handler(w, r)
	}
}

// actorType names a principal kind as the audit log does.
func actorType(kind string) string {
	if kind == authz.KindMember {
		return audit.ActorPerson
	}
	return kind
}

func (s *Server) authenticate(r *http.Request, vault bool) (*authz.Principal, error) {
	if vault {
		if tok := r.Header.Get("X-Vault-Token"); tok != "" {
			return s.d.Auth.Authenticate(r.Context(), strings.TrimSpace(tok))
		}
	}
	h := r.Header.Get("Authorization")
	if h == "" {
		c, err := r.Cookie(api.SessionCookie)
		if err != nil || c.Value == "" {
			return nil, nil
		}
		return s.d.Auth.Authenticate(r.Context(), c.Value)
	}
	tok, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || tok == "" {
		return nil, fault.New(fault.Unauthenticated, "unauthenticated", "Authorization must be \"Bearer <token>\"")
	}
	return s.d.Auth.Authenticate(r.Context(), strings.TrimSpace(tok))
}

// recordDenial logs a refused request in the caller's own log: a tenant
// principal's tenant, or the operator log. Probing another tenant never
// writes into that tenant's log.
func (s *Server) recordDenial(r *http.Request, rt api.Route, p *authz.Principal, tenantID string) {
	log := store.OperatorLog
	if p.Tenant() {
		log = p.TenantID
	}
	err := audit.Record(r.Context(), s.d.Store, s.d.Now(), audit.Denied(log, rt.Method+" "+rt.Pattern, string(rt.Perm), tenantID, nil))
	if err != nil && !errors.Is(err, store.ErrStale) { // a stale request runs again
		s.d.Log.Error("audit denial", "err", err)
	}
}

func newRequestID() string { return strings.ToLower(rand.Text()[:20]) }

// serve is the common edge around every handler.
func (s *Server) serve(label string, quiet, vault bool, h handler) http.Handler {
	level := slog.LevelInfo
	if quiet {
		level = slog.LevelDebug
	}
	render := api.Render
	if vault {
		render = api.RenderVault
	}
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rid := r.Header.Get("X-Request-Id")
		if !requestIDRE.MatchString(rid) {
			rid = newRequestID()
		}
		w := &statusWriter{ResponseWriter: rw}
		securityHeaders(w.Header())
		w.Header().Set("X-Request-Id", rid)
		ip, _, _ := net.SplitHostPort(r.RemoteAddr)
		r = r.WithContext(audit.WithSource(r.Context(), audit.Source{ActorType: audit.ActorAnonymous, IP: ip, UserAgent: r.UserAgent(), RequestID: rid}))
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				s.d.Log.Error("panic in handler", "request_id", rid, "route", label, "panic", fmt.Sprint(p))
				if !w.wrote {
					render(w, r, s.d.Log, rid, errors.New("panic"))
				}
			}
			elapsed := time.Since(start)
			s.requests.WithLabelValues(label, strconv.Itoa(w.status)).Inc()
			s.duration.WithLabelValues(label).Observe(elapsed.Seconds())
			s.d.Log.Log(r.Context(), level, "request", "request_id", rid, "method", r.Method, "path", r.URL.Path, "route", label,
				"status", w.status, "duration_ms", float64(elapsed.Microseconds())/1000, "remote", ip)
		}()
		if r.ContentLength > s.opts.MaxBodyBytes {
			render(w, r, s.d.Log, rid, fault.New(fault.TooLarge, "body_too_large", "request body exceeds %d bytes", s.opts.MaxBodyBytes))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, s.opts.MaxBodyBytes)
		if err := h(w, r, rid); err != nil {
			if w.wrote {
				s.d.Log.Error("error after response started", "request_id", rid, "err", err)
				return
			}
			render(w, r, s.d.Log, rid, err)
		}
	})
}

// Serve serves TLS on ln until ctx is cancelled, then stops accepting,
// finishes in-flight requests (up to ShutdownTimeout) and returns.
func (s *Server) Serve(ctx context.Context, ln net.Listener, tlsConfig *tls.Config) error {
	srv := &http.Server{
		Handler:           s.handler,
		TLSConfig:         tlsConfig,
		ReadHeaderTimeout: s.opts.ReadHeaderTimeout,
		ReadTimeout:       s.opts.ReadTimeout,
		WriteTimeout:      s.opts.WriteTimeout,
		IdleTimeout:       s.opts.IdleTimeout,
		MaxHeaderBytes:    s.opts.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.d.Log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(tls.NewListener(ln, tlsConfig)) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	s.d.Log.Info("shutting down: finishing in-flight requests", "timeout", s.opts.ShutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.Background(), s.opts.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("server: shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
