package metrics

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// Timeouts of the admin listener: it serves small answers to a scraper.
const (
	adminReadTimeout  = 10 * time.Second
	adminWriteTimeout = 30 * time.Second
	adminIdleTimeout  = 60 * time.Second
)

// Admin is the HTTP listener serving /metrics, /healthz and /readyz.
type Admin struct {
	srv  *http.Server
	ln   net.Listener
	done chan error // the Serve goroutine's result

	once sync.Once
	err  error // from done, once received
}

// Serve binds addr (config admin.address) and serves /metrics from m and
// /healthz in a goroutine until Shutdown or Close. /healthz answers 200 "ok"
// while healthy returns nil (nil: always), 503 otherwise.
func Serve(addr string, m *Metrics, healthy func() error) (*Admin, error) {
	return ServeProbes(addr, m, Probes{Healthy: healthy})
}

// Probes are what the admin listener's health answers ask. Nil fields
// are taken as fine.
type Probes struct {
	// Healthy returns an error when the instance cannot serve: /healthz
	// and /readyz answer 503.
	Healthy func() error
	// Degraded returns why the instance serves with less than it should
	// (shared state unreachable), "" when it does not: /healthz answers
	// 200 "degraded: why", since logins still work.
	Degraded func() string
	// Draining reports whether the instance is shutting down: /readyz
	// answers 503 so that a load balancer sends it nothing new.
	Draining func() bool
}

// ServeProbes is Serve with every probe: /healthz and /readyz.
func ServeProbes(addr string, m *Metrics, p Probes) (*Admin, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("admin listener: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if p.Healthy != nil {
			if err := p.Healthy(); err != nil {
				w.WriteHeader(http.StatusServiceUnavailable)
				io.WriteString(w, "unhealthy\n")
				return
			}
		}
		if p.Degraded != nil {
			if why := p.Degraded(); why != "" {
				io.WriteString(w, "degraded: "+why+"\n")
				return
			}
		}
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		switch {
		case p.Draining != nil && p.Draining():
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, "draining\n")
		case p.Healthy != nil && p.Healthy() != nil:
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, "unhealthy\n")
		default:
			io.WriteString(w, "ready\n")
		}
	})
	a := &Admin{
		srv: &http.Server{
			Handler:           mux,
			ReadHeaderTimeout: adminReadTimeout,
			ReadTimeout:       adminReadTimeout,
			WriteTimeout:      adminWriteTimeout,
			IdleTimeout:       adminIdleTimeout,
			MaxHeaderBytes:    8 << 10,
		},
		ln:   ln,
		done: make(chan error, 1),
	}
	go a.serve()
	return a, nil
}

// serve runs the HTTP server; a named function for stack dumps.
func (a *Admin) serve() {
	err := a.srv.Serve(a.ln)
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	a.done <- err
}

// Addr is the bound address.
func (a *Admin) Addr() net.Addr { return a.ln.Addr() }

// Shutdown stops accepting, waits for requests in progress until ctx ends,
// and returns once the serving goroutine has ended.
func (a *Admin) Shutdown(ctx context.Context) error {
	err := a.srv.Shutdown(ctx)
	if err != nil {
		a.srv.Close()
	}
	return errors.Join(err, a.wait())
}

// Close stops the listener and every connection at once.
func (a *Admin) Close() error {
	err := a.srv.Close()
	return errors.Join(err, a.wait())
}

// wait returns the serving goroutine's result once it has ended.
func (a *Admin) wait() error {
	a.once.Do(func() { a.err = <-a.done })
	return a.err
}
