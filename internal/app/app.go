// Package app assembles a Custodia node from its parts: storage, keys,
// services, the route table and the HTTP edge. The server command and the
// whole-system tests build nodes the same way through it.
package app

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/custodia-project/custodia/internal/access"
	"github.com/custodia-project/custodia/internal/api"
	"github.com/custodia-project/custodia/internal/audit"
	"github.com/custodia-project/custodia/internal/auth"
	"github.com/custodia-project/custodia/internal/fault"
	"github.com/custodia-project/custodia/internal/identity"
	"github.com/custodia-project/custodia/internal/keys"
	"github.com/custodia-project/custodia/internal/password"
	"github.com/custodia-project/custodia/internal/server"
	"github.com/custodia-project/custodia/internal/sharelinks"
	"github.com/custodia-project/custodia/internal/store"
	"github.com/custodia-project/custodia/internal/sys"
	"github.com/custodia-project/custodia/internal/tenant"
	"github.com/custodia-project/custodia/internal/vault"
)

// Options configure a node.
type Options struct {
	Store   store.Store
	Log     *slog.Logger
	Now     func() time.Time
	Version string
	// KeyFile is the root key of a key-file installation, or nil.
	KeyFile keys.Secret
	Server  server.Options
	// CheckpointEvery is how often grown audit logs are checkpointed
	// (default one second; negative turns the loop off, for tests that
	// checkpoint on demand).
	CheckpointEvery time.Duration
	// CheckpointPushers send each new checkpoint off the box.
	CheckpointPushers []audit.Pusher
	// Identity tunes people and sign-in (hasher, password policy, passkeys,
	// limits). Unset parts get safe defaults.
	Identity identity.Options
	// SweepEvery is how often expired grants, requests, challenges, share
	// links and dead leases are retired, scheduled reviews run and
	// certificate alerts go out (default one minute; negative turns the
	// loop off).
	SweepEvery time.Duration
}

// App is one assembled node.
type App struct {
	Store    store.Store
	Root     *keys.Root
	Keyring  *keys.Keyring
	Auth     *auth.Service
	Tenants  *tenant.Service
	Sys      *sys.Service
	Audit    *audit.Log
	Identity *identity.Service
	Access   *access.Service
	Vault    *vault.Service
	Shares   *sharelinks.Service
	Server   *server.Server
	Routes   []api.Route

	stopJobs context.CancelFunc
	wg       sync.WaitGroup
}

// DefaultServerOptions are the edge limits of a default configuration.
func DefaultServerOptions() server.Options {
	return server.Options{
		MaxBodyBytes: 1 << 20, MaxHeaderBytes: 64 << 10,
		ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 60 * time.Second,
		IdleTimeout: 120 * time.Second, ShutdownTimeout: 30 * time.Second,
	}
}

// New assembles a node and starts it: a key-file installation is unsealed
// here, and fails with a clear error when the key does not match the data.
func New(ctx context.Context, o Options) (*App, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	bg, stopJobs := context.WithCancel(context.WithoutCancel(ctx))
	a := &App{Store: o.Store, stopJobs: stopJobs}
	a.Root = keys.NewRoot(o.Store, o.Now)
	a.Keyring = keys.NewKeyring(a.Root, o.Now)
	a.Auth = auth.New(o.Store, o.Now)
	a.Tenants = tenant.New(bg, o.Store, a.Keyring, o.Now, o.Log)
	a.Sys = sys.New(o.Store, a.Root, a.Keyring, a.Auth, o.Now, o.Log, o.KeyFile)
	a.Audit = audit.NewLog(o.Store, a.Root, o.Now, o.Log, o.CheckpointPushers...)
	if o.Identity.Hasher == nil {
		h, err := password.NewHasher(password.DefaultParams(), 0)
		if err != nil {
			stopJobs()
			return nil, err
		}
		o.Identity.Hasher = h
	}
	if o.Identity.Policy == (password.Policy{}) {
		o.Identity.Policy = password.DefaultPolicy()
	}
	a.Identity = identity.New(o.Store, a.Keyring, a.Tenants, o.Now, o.Log, o.Identity)
	a.Access = access.New(o.Store, o.Now, o.Log)
	a.Vault = vault.New(o.Store, a.Keyring, o.Now, o.Log)
	a.Shares = sharelinks.New(o.Store, a.Keyring, o.Now, o.Log)
	if o.SweepEvery == 0 {
		o.SweepEvery = time.Minute
	}
	if o.SweepEvery > 0 {
		a.wg.Go(func() { a.sweep(bg, o.SweepEvery, o.Log) })
	}
	if o.CheckpointEvery == 0 {
		o.CheckpointEvery = time.Second
	}
	if o.CheckpointEvery > 0 {
		a.wg.Go(func() { a.Audit.Run(bg, o.CheckpointEvery) })
	}
	a.Root.AfterUnseal(func() {
		if err := a.Tenants.ResumeJobs(bg); err != nil {
			o.Log.Error("resume jobs", "err", err)
		}
	})
	if err := a.Sys.Start(ctx); err != nil {
		a.Close()
		return nil, err
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "custodia_sealed", Help: "1 while the vault is sealed."},
			func() float64 {
				if a.Root.Sealed() {
					return 1
				}
				return 0
			}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "custodia_build_info", Help: "Build version and storage engine.",
			ConstLabels: prometheus.Labels{"version": o.Version, "engine": o.Store.Engine()}},
			func() float64 { return 1 }),
	)
	a.Routes = api.Routes(&api.Deps{
		Store: o.Store, Sys: a.Sys, Tenants: a.Tenants, Auth: a.Auth, Audit: a.Audit, Identity: a.Identity, Access: a.Access, Vault: a.Vault,
		Now: o.Now, Version: o.Version,
		Metrics: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}),
		Ready:   a.ready,
		Shares:  a.Shares,
	})
	srv, err := server.New(o.Server, server.Deps{Log: o.Log, Auth: a.Auth, Sealed: a.Root.Sealed, Store: o.Store, Now: o.Now, Registry: reg,
		ResolveTenant: func(ctx context.Context, ref string) (string, bool) {
			t, err := a.Tenants.Get(ctx, ref)
			if err != nil {
				return "", false
			}
			return t.ID, true
		}}, a.Routes)
	if err != nil {
		a.Close()
		return nil, err
	}
	a.Server = srv
	return a, nil
}

func (a *App) ready(ctx context.Context) error {
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := a.Store.Ping(pctx); err != nil {
		return fault.Wrap(err, fault.Unavailable, "storage_unreachable", "storage unreachable")
	}
	if a.Root.Sealed() {
		return fault.ErrSealed
	}
	return nil
}

// Sweep runs the time-driven work of identity and access once: expired
// grants are retired and recorded (they were already refused at expiry),
// unanswered requests expire, reviews past their deadline close, scheduled
// reviews open, spent challenges are deleted, and admins are told of
// certificates nearing or past expiry.
func (a *App) Sweep(ctx context.Context) error {
	if a.Root.Sealed() {
		return nil
	}
	_, err1 := a.Access.RetireExpired(ctx)
	_, err2 := a.Access.ExpireRequests(ctx)
	err3 := a.Access.RunReviews(ctx)
	err4 := a.Store.Update(ctx, func(tx store.Tx) error {
		_, err := tx.DeleteExpiredChallenges(ctx, time.Now().Add(-24*time.Hour))
		return err
	})
	// Expired share links were refused at expiry; the sweep burns them.
	if _, err := a.Shares.Sweep(ctx); err != nil {
		err4 = errors.Join(err4, err)
	}
	_, err5 := a.Vault.CertificateAlerts(ctx)
	_, err6 := a.Vault.PurgeLeases(ctx)
	return errors.Join(err1, err2, err3, err4, err5, err6)
}

func (a *App) sweep(ctx context.Context, every time.Duration, log *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := a.Sweep(ctx); err != nil && ctx.Err() == nil {
				log.Error("sweep", "err", err)
			}
		}
	}
}

// Handler is the node's HTTP handler.
func (a *App) Handler() http.Handler { return a.Server.Handler() }

// Close stops background jobs and waits for them. It does not close the
// store, which the caller opened.
func (a *App) Close() {
	a.stopJobs()
	a.Tenants.Wait()
	a.wg.Wait()
}
