package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"

	"github.com/rs/zerolog"

	"github.com/imapwhy/imapwhy/internal/certs"
	"github.com/imapwhy/imapwhy/internal/config"
	"github.com/imapwhy/imapwhy/internal/metrics"
	"github.com/imapwhy/imapwhy/internal/notify"
	"github.com/imapwhy/imapwhy/internal/shield"
	"github.com/imapwhy/imapwhy/internal/state"
	"github.com/imapwhy/imapwhy/proxy"
)

func runServe(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "configuration file (YAML); none: the built-in default")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "imapwhy serve: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	cfg, err := loadConfig(*path)
	if err != nil {
		fmt.Fprintf(stderr, "imapwhy serve: %v\n", err)
		return 2
	}
	log := proxy.NewLogger(cfg.Log, stderr)
	if err := disableCoreDumps(); err != nil {
		log.Warn().Err(err).Str("event", "core_dumps").Msg("could not turn core dumps off; a core file may hold passwords")
	}
	for _, w := range cfg.Warnings() {
		log.Warn().Str("event", "config_warning").Msg(w)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	cm, err := certs.New(ctx, cfg.TLS, cfg.StateDir, log)
	if err != nil {
		fmt.Fprintf(stderr, "imapwhy serve: %v\n", err)
		return 1
	}
	defer cm.Close()
	m := metrics.New()
	m.WatchCertificate(cm.NotAfter)
	st, sh, err := openState(cfg, log, m)
	if err != nil {
		fmt.Fprintf(stderr, "imapwhy serve: %v\n", err)
		return 1
	}
	if sh != nil {
		defer sh.Close()
	}
	if st != nil {
		defer st.Close()
	}
	var running atomic.Pointer[proxy.Server] // for /readyz, once made
	if cfg.Admin.Address != "" {
		admin, err := metrics.ServeProbes(cfg.Admin.Address, m, metrics.Probes{
			Degraded: st.Degraded,
			Draining: func() bool { s := running.Load(); return s != nil && s.Draining() },
		})
		if err != nil {
			fmt.Fprintf(stderr, "imapwhy serve: %v\n", err)
			return 1
		}
		defer admin.Close()
		fmt.Fprintf(stdout, "imapwhy: metrics on http://%s/metrics\n", admin.Addr())
	}
	no := notify.Options{Logger: log, TLS: cm.TLSConfig()}
	po := proxy.Options{Logger: log, TLS: cm.TLSConfig(), Shield: sh, Metrics: m}
	if st != nil {
		no.Shared = st.Incidents(cfg.Web.MaxIncidents)
		po.SharedLimits = st.Limiter()
	}
	d, err := newDaemon(cfg, po, no)
	if err != nil {
		fmt.Fprintf(stderr, "imapwhy serve: %v\n", err)
		return 2
	}
	running.Store(d.proxy)
	if err := d.start(); err != nil {
		fmt.Fprintf(stderr, "imapwhy serve: %v\n", err)
		return 1
	}
	for i, a := range d.proxy.Addrs() {
		l := cfg.Listeners[i]
		fmt.Fprintf(stdout, "imapwhy: listening on %s (%s), upstream %s\n", a, l.TLS, l.Upstream.Address)
	}
	if a := d.reach.WebAddr(); a != nil {
		fmt.Fprintf(stdout, "imapwhy: incident and status pages on https://%s/\n", a)
	}
	if f := cm.CAFile(); f != "" {
		fmt.Fprintf(stdout, "imapwhy: local certificate authority %s\n", f)
		fmt.Fprintf(stdout, "imapwhy: check this fingerprint when your phone asks to trust it: %s\n", cm.Fingerprint())
	}

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-hup:
			reload(*path, d, cm, log)
		case <-ctx.Done():
			stop() // a second signal now kills the process
			log.Info().Str("event", "shutdown").Dur("drain", cfg.Timeouts.Drain.D()).Msg("shutting down")
			dctx, cancel := context.WithTimeout(context.Background(), cfg.Timeouts.Drain.D())
			defer cancel()
			if err := d.shutdown(dctx); err != nil {
				return 1
			}
			return 0
		}
	}
}

// loadConfig reads path, or returns the built-in default for "".
func loadConfig(path string) (config.Config, error) {
	if path == "" {
		return config.Default(), nil
	}
	return config.Load(path)
}

// reload re-reads the certificates and the configuration on SIGHUP: the
// proxy's settings, then the web and notify ones (notify.Reach.Reload logs
// those that need a restart). A bad new configuration is reported and the
// running one kept.
func reload(path string, d *daemon, cm *certs.Manager, log zerolog.Logger) {
	if err := cm.Reload(); err != nil {
		log.Error().Err(err).Str("event", "reload_failed").Msg("certificates not reloaded")
	}
	cfg, err := loadConfig(path)
	var notifyErr error
	if err == nil {
		err, notifyErr = d.reload(cfg)
	}
	if err != nil {
		log.Error().Err(err).Str("event", "reload_failed").Msg("configuration not reloaded; the old one stays")
	}
	if notifyErr != nil {
		log.Error().Err(notifyErr).Str("event", "reload_failed").Msg("web and notify settings not reloaded; the old ones stay")
	}
}

// openState connects to the shared state (state.redis), if any, and makes
// the shield over it, or over the store the shield section names.
func openState(cfg config.Config, log zerolog.Logger, m *metrics.Metrics) (*state.Redis, *shield.Shield, error) {
	opts := shield.Options{OnError: func(err error) {
		log.Warn().Err(err).Str("event", "shield_error").Msg("failure history store")
	}}
	if !cfg.State.Redis.On() {
		sh, err := shield.Open(cfg.Shield, cfg.StateDir, opts)
		return nil, sh, err
	}
	st, err := state.Open(cfg.State.Redis, cfg.StateDir, state.Options{Log: log, Metrics: m})
	if err != nil {
		return nil, nil, err
	}
	return st, shield.OpenShared(cfg.Shield, st.History(cfg.Shield.MaxUsers), st.Secret(), opts), nil
}
