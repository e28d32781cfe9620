package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"regexp"
	"strings"
	"sync/atomic"
	"syscall"

	"github.com/rs/zerolog"
	"gopkg.in/yaml.v3"

	"github.com/imapwhy/imapwhy/internal/certs"
	"github.com/imapwhy/imapwhy/internal/config"
	"github.com/imapwhy/imapwhy/internal/metrics"
	"github.com/imapwhy/imapwhy/internal/notify"
	"github.com/imapwhy/imapwhy/internal/shield"
	"github.com/imapwhy/imapwhy/internal/state"
	"github.com/imapwhy/imapwhy/proxy"
)

const serveUsage = `Usage: imapwhy serve [--config FILE] [--lan] [--listen ADDR]... [--web ADDR|off]
                     [--host HOST] [--setup-http ADDR|off]

Runs the proxy. Without --config it listens on 127.0.0.1:1993 (SSL/TLS) and
127.0.0.1:1143 (STARTTLS) and routes each login to the provider of the
user's email domain. In local mode (the default) the status and set-up
pages are on https://localhost:8443/ unless web.address says otherwise.

--lan opens imapwhy to this PC's home network: the listeners and pages
accept phones and PCs from private addresses (others are refused), and a
QR code opens the set-up page on a phone.

Options:
`

// serveFlags are serve's command line.
type serveFlags struct {
	config    string
	lan       bool
	listen    []string
	web       string
	host      string
	setupHTTP string
}

// Defaults of the home-network mode and the pages.
const (
	defaultWebPort   = "8443"
	defaultSetupHTTP = ":8480"
)

func parseServeFlags(args []string, stderr io.Writer) (serveFlags, error) {
	var f serveFlags
	fs := newFlagSet("imapwhy serve", serveUsage, stderr)
	fs.StringVar(&f.config, "config", "", "configuration `FILE` (YAML); none: the built-in default")
	fs.BoolVar(&f.lan, "lan", false, "accept phones and PCs on the home network (private addresses only), print a QR code of the set-up page")
	fs.Func("listen", "`ADDR` for the next listener, in the configuration's order (repeatable; \":2993\" keeps the host)", func(v string) error {
		f.listen = append(f.listen, v)
		return nil
	})
	fs.StringVar(&f.web, "web", "", "`ADDR` of the status and set-up pages (\":9443\" keeps the host), or off")
	fs.StringVar(&f.host, "host", "", "the `HOST` phones reach this PC at, for the set-up page and QR code (default: its private address)")
	fs.StringVar(&f.setupHTTP, "setup-http", "", "with --lan: `ADDR` of the plain-HTTP first-contact link (default "+defaultSetupHTTP+"), or off")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return f, err
		}
		return f, errUsageShown
	}
	if fs.NArg() > 0 {
		return f, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return f, nil
}

// applyServeFlags puts the command line's overrides into cfg. Each
// override says in the error which flag it came from.
func applyServeFlags(cfg *config.Config, f serveFlags, fileSetsWeb bool) error {
	if len(f.listen) > len(cfg.Listeners) {
		return fmt.Errorf("--listen given %d times; the configuration has %d listeners", len(f.listen), len(cfg.Listeners))
	}
	for i, a := range f.listen {
		addr, err := withHost(a, cfg.Listeners[i].Address)
		if err != nil {
			return fmt.Errorf("--listen %q: %w", a, err)
		}
		cfg.Listeners[i].Address = addr
	}
	if f.lan {
		if cfg.Web.Mode == config.WebModeGateway || cfg.Web.Admin.Set() {
			return errors.New("--lan is the home-network mode; the configuration is in gateway mode (web.mode, web.admin)")
		}
		cfg.Web.Mode = config.WebModeLocal
		for i := range cfg.Listeners {
			l := &cfg.Listeners[i]
			host, port, err := net.SplitHostPort(l.Address)
			if err == nil && config.IsLoopbackHost(host) && l.TLS != config.TLSNone {
				l.Address = net.JoinHostPort("0.0.0.0", port)
			}
		}
	}
	switch {
	case f.web == "off":
		cfg.Web.Address = ""
	case f.web != "":
		def := cfg.Web.Address
		if def == "" {
			def = net.JoinHostPort("127.0.0.1", defaultWebPort)
		}
		addr, err := withHost(f.web, def)
		if err != nil {
			return fmt.Errorf("--web %q: %w", f.web, err)
		}
		cfg.Web.Address = addr
	case !fileSetsWeb && cfg.LocalMode():
		// In local mode the pages are the way to see why a login failed.
		cfg.Web.Address = net.JoinHostPort("127.0.0.1", defaultWebPort)
	}
	if f.lan && cfg.Web.Address != "" {
		if host, port, err := net.SplitHostPort(cfg.Web.Address); err == nil && config.IsLoopbackHost(host) {
			cfg.Web.Address = net.JoinHostPort("0.0.0.0", port)
		}
	}
	return cfg.Validate()
}

// withHost is addr, or with ":PORT" the host of def and that port.
func withHost(addr, def string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", errors.New("want HOST:PORT or :PORT")
	}
	if host == "" {
		host, _, _ = net.SplitHostPort(def)
	}
	return net.JoinHostPort(host, port), nil
}

// fileSetsWeb reports whether the configuration file gives web.address
// (even as ""): then the pages are as it says.
func fileSetsWeb(path string) bool {
	if path == "" {
		return false
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	var doc struct {
		Web map[string]any `yaml:"web"`
	}
	if yaml.Unmarshal(b, &doc) != nil {
		return false
	}
	_, ok := doc.Web["address"]
	return ok
}

func runServe(args []string, stdout, stderr io.Writer) int {
	f, err := parseServeFlags(args, stderr)
	if status, stop := parseFailed(err, "serve", 2, stderr); stop {
		return status
	}
	cfg, err := loadConfig(f.config)
	if err == nil {
		err = applyServeFlags(&cfg, f, fileSetsWeb(f.config))
	}
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
			fmt.Fprintf(stderr, "imapwhy serve: %v%s\n", err, busyHint(err, "--config (admin.address)"))
			return 1
		}
		defer admin.Close()
		fmt.Fprintf(stdout, "imapwhy: metrics on http://%s/metrics\n", admin.Addr())
	}
	no := notify.Options{Logger: log, TLS: cm.TLSConfig()}
	po := proxy.Options{Logger: log, TLS: cm.TLSConfig(), Shield: sh, Metrics: m}
	if po.Bridge, err = openBridge(cfg, log); err != nil {
		fmt.Fprintf(stderr, "imapwhy serve: %v\n", err)
		return 2
	}
	if st != nil {
		no.Shared = st.Incidents(cfg.Web.MaxIncidents)
		po.SharedLimits = st.Limiter()
	}
	// The set-up page and its live view of a device's first logins.
	su, err := newSetup(cfg, cm, f, log)
	if err != nil {
		fmt.Fprintf(stderr, "imapwhy serve: %v\n", err)
		return 2
	}
	defer su.events.Close()
	d, err := newDaemon(cfg, po, no, su)
	if err != nil {
		fmt.Fprintf(stderr, "imapwhy serve: %v\n", err)
		return 2
	}
	running.Store(d.proxy)
	if err := d.start(); err != nil {
		fmt.Fprintf(stderr, "imapwhy serve: %v%s\n", err, busyHint(err, busyFlag(err)))
		return 1
	}
	if err := su.start(d.reach.WebAddr(), setupListeners(cfg, d.proxy.Addrs()), cfg.ClientAllowed()); err != nil {
		d.shutdown(context.Background())
		fmt.Fprintf(stderr, "imapwhy serve: %v%s\n", err, busyHint(err, "--setup-http"))
		return 1
	}
	defer su.shutdown()
	for i, a := range d.proxy.Addrs() {
		l := cfg.Listeners[i]
		fmt.Fprintf(stdout, "imapwhy: listening on %s (%s), upstream %s\n", a, l.TLS, l.Upstream.Address)
	}
	if a := d.reach.WebAddr(); a != nil {
		fmt.Fprintf(stdout, "imapwhy: incident and status pages on https://%s/\n", a)
	}
	printFingerprints(stdout, cm)
	su.print(stdout)

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-hup:
			reload(f, d, cm, log)
		case <-ctx.Done():
			stop() // a second signal now kills the process
			log.Info().Str("event", "shutdown").Int64("drain_ms", cfg.Timeouts.Drain.D().Milliseconds()).Msg("shutting down")
			dctx, cancel := context.WithTimeout(context.Background(), cfg.Timeouts.Drain.D())
			defer cancel()
			if err := d.shutdown(dctx); err != nil {
				return 1
			}
			return 0
		}
	}
}

// printFingerprints prints the fingerprints a person compares: the local
// CA's (installing the profile or the CA) and the server certificate's (a
// mail app's "add exception" dialog shows that one).
func printFingerprints(w io.Writer, cm *certs.Manager) {
	if f := cm.CAFile(); f != "" {
		fmt.Fprintf(w, "imapwhy: local certificate authority %s\n", f)
		fmt.Fprintf(w, "imapwhy: CA fingerprint (shown when a phone installs the profile or the CA): %s\n", cm.Fingerprint())
	}
	if lf := cm.LeafFingerprint(); lf != "" {
		fmt.Fprintf(w, "imapwhy: server certificate fingerprint (shown by a mail app's \"add exception\" or \"trust this certificate\" dialog): %s\n", lf)
	}
}

// busyFlag names where the address of a failed bind comes from.
func busyFlag(err error) string {
	msg := err.Error()
	if strings.HasPrefix(msg, "web.address") {
		return "--web (web.address)"
	}
	if m := listenerIndex.FindStringSubmatch(msg); m != nil {
		return fmt.Sprintf("--listen (listeners[%s].address)", m[1])
	}
	return "--config"
}

var listenerIndex = regexp.MustCompile(`^listeners\[(\d+)\]`)

// busyHint explains an address already in use: which port, and the flag
// or key that changes it.
func busyHint(err error, flagName string) string {
	// Windows reports WSAEADDRINUSE, which is not syscall.EADDRINUSE there.
	if !errors.Is(err, syscall.EADDRINUSE) && !strings.Contains(err.Error(), "Only one usage of each socket address") {
		return ""
	}
	port := ""
	var op *net.OpError
	if errors.As(err, &op) && op.Addr != nil {
		_, port, _ = net.SplitHostPort(op.Addr.String())
	}
	return fmt.Sprintf("\nimapwhy serve: port %s is taken (another imapwhy, or another program): choose another with %s", port, flagName)
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
func reload(f serveFlags, d *daemon, cm *certs.Manager, log zerolog.Logger) {
	if err := cm.Reload(); err != nil {
		log.Error().Err(err).Str("event", "reload_failed").Msg("certificates not reloaded")
	}
	cfg, err := loadConfig(f.config)
	if err == nil {
		err = applyServeFlags(&cfg, f, fileSetsWeb(f.config))
	}
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
