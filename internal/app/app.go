// Package app assembles a Custodia node from its parts: storage, keys,
// services, the route table and the HTTP edge. The server command and the
// whole-system tests build nodes the same way through it.
package app

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/custodia-project/custodia/internal/api"
	"github.com/custodia-project/custodia/internal/audit"
	"github.com/custodia-project/custodia/internal/auth"
	"github.com/custodia-project/custodia/internal/fault"
	"github.com/custodia-project/custodia/internal/keys"
	"github.com/custodia-project/custodia/internal/server"
	"github.com/custodia-project/custodia/internal/store"
	"github.com/custodia-project/custodia/internal/sys"
	"github.com/custodia-project/custodia/internal/tenant"
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
}

// App is one assembled node.
type App struct {
	Store   store.Store
	Root    *keys.Root
	Keyring *keys.Keyring
	Auth    *auth.Service
	Tenants *tenant.Service
	Sys     *sys.Service
	Audit   *audit.Log
	Server  *server.Server
	Routes  []api.Route

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
		Store: o.Store, Sys: a.Sys, Tenants: a.Tenants, Auth: a.Auth, Audit: a.Audit, Now: o.Now, Version: o.Version,
		Metrics: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}),
		Ready:   a.ready,
	})
	srv, err := server.New(o.Server, server.Deps{Log: o.Log, Auth: a.Auth, Sealed: a.Root.Sealed, Store: o.Store, Now: o.Now, Registry: reg}, a.Routes)
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

// Handler is the node's HTTP handler.
func (a *App) Handler() http.Handler { return a.Server.Handler() }

// Close stops background jobs and waits for them. It does not close the
// store, which the caller opened.
func (a *App) Close() {
	a.stopJobs()
	a.Tenants.Wait()
	a.wg.Wait()
}
