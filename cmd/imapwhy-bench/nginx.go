//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"text/template"
	"time"
)

// nginxConf is the whole configuration of one nginx mail proxy: nothing
// from /etc/nginx is read. Debian's defaults are kept where they matter
// for speed (proxy_buffer, ssl_buffer_size) and the number of workers (one
// per CPU); only the limits are raised so that 10,000 sessions fit, as far
// as the hard open-file limit allows in each worker.
var nginxConf = template.Must(template.New("nginx.conf").Parse(`# Written by imapwhy-bench for one run.
load_module {{.Module}};
daemon off;
master_process on;
worker_processes auto;
worker_rlimit_nofile {{.NoFile}};
pid {{.Dir}}/nginx.pid;
error_log {{.Dir}}/error.log warn;
{{- if .User}}
user {{.User}};
{{- end}}

events {
    worker_connections {{.Connections}};
}

mail {
    auth_http {{.AuthHTTP}}/auth;
    proxy_pass_error_message on;
    imap_auth plain login;
    imap_capabilities IMAP4rev1 SASL-IR LITERAL+;
    ssl_certificate {{.CertFile}};
    ssl_certificate_key {{.KeyFile}};
    ssl_protocols TLSv1.2 TLSv1.3;
{{- range .Plain}}
    server { listen {{.}}; protocol imap; }
{{- end}}
{{- range .TLS}}
    server { listen {{.}} ssl; protocol imap; }
{{- end}}
}
`))

// nginxOptions describe one nginx instance.
type nginxOptions struct {
	Bin, Module string
	Dir         string   // its own directory: configuration, pid, logs
	Plain, TLS  []string // listen addresses
	Upstream    string   // the IMAP server auth_http sends every login to
	Cert        *proxyCert
	Sessions    int // sessions it must hold at once
}

// nginxProc is an nginx master (a child of the driver, in the foreground)
// with its workers, and the auth_http endpoint it asks about each login.
type nginxProc struct {
	*child
	auth *http.Server
}

// startNginx starts the auth_http endpoint and nginx.
func startNginx(o nginxOptions) (*nginxProc, error) {
	auth, authAddr, err := serveAuthHTTP(o.Upstream)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		auth.Close()
		return nil, err
	}
	conf := filepath.Join(o.Dir, "nginx.conf")
	if err := writeNginxConf(conf, o, authAddr); err != nil {
		auth.Close()
		return nil, err
	}
	// -e: the error log before the configuration is read, which otherwise
	// is /var/log/nginx/error.log.
	logPath := filepath.Join(o.Dir, "error.log")
	c, err := startChild("nginx", filepath.Join(o.Dir, "nginx.out"), o.Bin, "-p", o.Dir, "-e", logPath, "-c", conf)
	if err != nil {
		auth.Close()
		return nil, err
	}
	if err := c.waitListening(10*time.Second, append(append([]string{}, o.Plain...), o.TLS...)...); err != nil {
		c.stop(time.Second)
		auth.Close()
		return nil, fmt.Errorf("%w (see %s)", err, logPath)
	}
	c.errLog = logPath
	return &nginxProc{child: c, auth: auth}, nil
}

func writeNginxConf(path string, o nginxOptions, authAddr string) error {
	data := struct {
		nginxOptions
		AuthHTTP, User, CertFile, KeyFile string
		NoFile, Connections               int
	}{
		nginxOptions: o,
		AuthHTTP:     authAddr,
		CertFile:     o.Cert.CertFile,
		KeyFile:      o.Cert.KeyFile,
		// Each session is two connections in one worker; auth_http
		// requests need a few more.
		Connections: 2*o.Sessions + 1024,
		NoFile:      2*o.Sessions + 4096,
	}
	// A worker cannot raise its limit above the hard one (setrlimit fails
	// without CAP_SYS_RESOURCE, even as root), and connections above its
	// limit are only a warning: both are kept within it, so that the
	// configuration says what the workers really have.
	if hard, err := hardFileLimit(); err == nil && hard < uint64(data.NoFile) {
		data.NoFile = int(hard)
		data.Connections = min(data.Connections, int(hard))
	}
	if os.Geteuid() == 0 {
		data.User = "nobody nogroup" // Debian's unprivileged pair
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := nginxConf.Execute(f, data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// serveAuthHTTP serves nginx's auth_http protocol on loopback: every
// login is accepted and sent to upstream, which decides on the password
// itself (nginx then logs in there with the client's credentials).
func serveAuthHTTP(upstream string) (*http.Server, string, error) {
	host, port, err := net.SplitHostPort(upstream)
	if err != nil {
		return nil, "", err
	}
	if net.ParseIP(host) == nil {
		return nil, "", fmt.Errorf("auth_http: nginx needs an IP address, not %q", host)
	}
	if _, err := strconv.Atoi(port); err != nil {
		return nil, "", fmt.Errorf("auth_http: port %q: %w", port, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", err
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			h := w.Header()
			h.Set("Auth-Status", "OK")
			h.Set("Auth-Server", host)
			h.Set("Auth-Port", port)
			w.WriteHeader(http.StatusOK)
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintf(os.Stderr, "auth_http: %v\n", err)
		}
	}()
	return srv, ln.Addr().String(), nil
}

// pids are nginx's worker processes, which hold the sessions.
func (p *nginxProc) pids() ([]int, error) {
	kids, err := childrenOf(p.pid())
	if err == nil && len(kids) == 0 {
		err = errors.New("nginx has no worker processes")
	}
	return kids, err
}

// close stops nginx and its auth_http endpoint.
func (p *nginxProc) close() error {
	err := p.stop(5 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	p.auth.Shutdown(ctx)
	return err
}
