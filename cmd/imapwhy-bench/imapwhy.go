//go:build linux

package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/imapwhy/imapwhy/internal/config"
)

// imapwhyListener is one listener of the imapwhy under test: where clients
// connect, with which TLS, and the plaintext upstream behind it.
type imapwhyListener struct {
	Address  string
	TLS      string // config.TLSNone or config.TLSImplicit
	Upstream string // host:port, plaintext
}

// imapwhyOptions describe one `imapwhy serve` child.
type imapwhyOptions struct {
	Bin, Dir, Name string // binary, work directory, name of its files there
	Cert           *proxyCert
	Shield         bool // the shield, on by default in production
	// Admin turns on the admin listener, whose /metrics shows the Go
	// runtime's goroutines and memory.
	Admin     bool
	Listeners []imapwhyListener
}

// imapwhyProc is an `imapwhy serve` child process.
type imapwhyProc struct {
	*child
	addrs   []string // its listeners' addresses, in order
	metrics string   // URL of /metrics, "" without the admin listener
}

// startImapwhy writes a configuration into o.Dir and runs `imapwhy serve`
// with it. The log (info level, JSON, as in production) goes to
// o.Dir/o.Name.log.
func startImapwhy(o imapwhyOptions) (*imapwhyProc, error) {
	cfg := config.Default()
	cfg.StateDir = filepath.Join(o.Dir, o.Name+"-state")
	cfg.TLS = config.TLS{CertFile: o.Cert.CertFile, KeyFile: o.Cert.KeyFile}
	cfg.Timeouts.Drain = config.Duration(2 * time.Second)
	// Every benchmark client comes from 127.0.0.1 and logs in as the same
	// user, thousands of times a minute: the per-address and per-user
	// limits, meant for real clients, are off. Everything else (the
	// shield, logging at info level) stays as shipped.
	cfg.Limits.PerAddressLoginsPerMinute = config.Unlimited
	cfg.Limits.PerUserLoginsPerMinute = config.Unlimited
	cfg.Limits.PerAddressConnections = config.Unlimited
	cfg.Shield.Enabled = &o.Shield
	p := &imapwhyProc{}
	if o.Admin {
		a, err := freeAddr("127.0.0.1")
		if err != nil {
			return nil, err
		}
		cfg.Admin.Address = a
		p.metrics = "http://" + a + "/metrics"
	}
	cfg.Listeners = nil
	for _, l := range o.Listeners {
		cfg.Listeners = append(cfg.Listeners, config.Listener{
			Address:  l.Address,
			TLS:      l.TLS,
			Language: "en",
			Upstream: config.Upstream{Address: l.Upstream, TLS: config.TLSNone},
		})
		p.addrs = append(p.addrs, l.Address)
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("imapwhy configuration: %w", err)
	}
	b, err := yaml.Marshal(&cfg)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(o.Dir, o.Name+".yaml")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return nil, err
	}
	logPath := filepath.Join(o.Dir, o.Name+".log")
	c, err := startChild(o.Name, logPath, o.Bin, "serve", "--config", path)
	if err != nil {
		return nil, err
	}
	if err := c.waitListening(10*time.Second, p.addrs...); err != nil {
		c.stop(time.Second)
		return nil, fmt.Errorf("%w (see %s)", err, logPath)
	}
	p.child = c
	return p, nil
}

// pids is the process whose usage is measured.
func (p *imapwhyProc) pids() ([]int, error) { return []int{p.pid()}, nil }

// goRuntime is what the Go runtime of a process reports.
type goRuntime struct {
	Goroutines int
	Stack      int64 // bytes of goroutine stacks in use
	HeapInuse  int64 // bytes in in-use heap spans: live objects and garbage not yet collected
}

// goRuntime reads the Go collector's gauges from /metrics; ok is false
// without the admin listener.
func (p *imapwhyProc) goRuntime(ctx context.Context) (g goRuntime, ok bool, err error) {
	if p.metrics == "" {
		return g, false, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.metrics, nil)
	if err != nil {
		return g, false, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return g, false, err
	}
	defer resp.Body.Close()
	vals := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, v, found := strings.Cut(sc.Text(), " ")
		switch name {
		case "go_goroutines", "go_memstats_stack_inuse_bytes", "go_memstats_heap_inuse_bytes":
			if f, err := strconv.ParseFloat(v, 64); found && err == nil {
				vals[name] = f
			}
		}
	}
	if err := sc.Err(); err != nil {
		return g, false, err
	}
	if len(vals) != 3 {
		return g, false, fmt.Errorf("%s: no Go runtime gauges", p.metrics)
	}
	return goRuntime{
		Goroutines: int(vals["go_goroutines"]),
		Stack:      int64(vals["go_memstats_stack_inuse_bytes"]),
		HeapInuse:  int64(vals["go_memstats_heap_inuse_bytes"]),
	}, true, nil
}
