//go:build linux

package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/imapwhy/imapwhy/internal/config"
)

// run sets up the servers, runs the benchmarks o selects and prints the
// report.
func run(ctx context.Context, o options, stdout io.Writer) error {
	if !o.Hold {
		if err := fitFileLimit(&o); err != nil {
			return err
		}
	}
	dir := o.WorkDir
	if dir == "" {
		d, err := os.MkdirTemp("", "imapwhy-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		dir = d
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	cert, err := writeProxyCert(dir)
	if err != nil {
		return err
	}
	rep := &report{
		Messages: o.Messages, MessageSize: o.MessageSize, Rounds: o.Rounds, BulkRounds: o.BulkRounds,
		LoginTime: o.LoginTime, Noops: o.Noops, Settle: o.Settle,
		LoadStart: loadAverage(), FileLimit: o.FileLimit, SessionsCut: o.SessionsCut, Shield: o.Shield,
	}
	if o.Hold || o.want("bulk") || o.want("login") || o.want("noop") {
		if err := runDovecotBenches(ctx, o, dir, cert, rep); err != nil || o.Hold {
			return err
		}
	}
	if o.want("idle") {
		if err := runIdleBenches(ctx, o, dir, cert, rep); err != nil {
			return err
		}
	}
	rep.LoadEnd = loadAverage()
	rep.render(stdout)
	return nil
}

// fileSlack is the open files a process needs besides the idle test's
// sockets: listeners, logs, the Go runtime's, auth_http's.
const fileSlack = 256

// fitFileLimit raises the open-file limit for the idle test, for the
// driver and the processes it starts. The driver holds one socket per
// session (the client's), and so does the upstream, a process of its
// own; the proxies need two per session (client and upstream), which the
// test does not make room for: where a proxy runs out, the report says
// so. Only if the driver itself cannot hold the clients (the hard limit
// cannot be raised without CAP_SYS_RESOURCE) are the session counts above
// what it can hold replaced by the most it can, and the report says so.
func fitFileLimit(o *options) error {
	if !o.want("idle") {
		return nil
	}
	most := o.Sessions[len(o.Sessions)-1]
	got, err := raiseFileLimit(uint64(2*most + fileSlack))
	if err != nil {
		return fmt.Errorf("raising the open-file limit: %w", err)
	}
	o.FileLimit = got
	if got >= uint64(most+fileSlack) {
		return nil
	}
	fits := (int(got) - fileSlack) / 100 * 100
	if fits < 100 {
		return fmt.Errorf("open-file limit %d is too low for the idle test", got)
	}
	var kept []int
	for _, n := range o.Sessions {
		if n < fits {
			kept = append(kept, n)
		}
	}
	o.Sessions = append(kept, fits)
	o.SessionsCut = true
	log.Printf("open-file limit %d (hard): the driver can hold %d clients, not %d", got, fits, most)
	return nil
}

// runDovecotBenches runs the bulk, login and NOOP benchmarks against
// Dovecot directly, through imapwhy and through nginx.
func runDovecotBenches(ctx context.Context, o options, dir string, cert *proxyCert, rep *report) error {
	h := &harness{verbose: o.Verbose}
	defer h.close()
	log.Print("starting dovecot")
	dc, err := startDovecot(h)
	if err != nil {
		return err
	}
	if o.want("bulk") {
		log.Printf("filling the mailbox: %d messages of %d bytes", o.Messages, o.MessageSize)
		if err := fillMailbox(ctx, dc.IMAP, o.Messages, o.MessageSize); err != nil {
			return err
		}
	}
	addrs, err := freeAddrs(2)
	if err != nil {
		return err
	}
	ngPlain, ngTLS := addrs[0], addrs[1]
	iw, err := startImapwhyFor(o.Imapwhy, dir, "imapwhy", cert, o.Shield, dc.IMAP)
	if err != nil {
		return err
	}
	defer iw.stop(5 * time.Second)
	var base *imapwhyProc
	if o.Baseline != "" {
		if base, err = startImapwhyFor(o.Baseline, dir, "imapwhy-baseline", cert, o.Shield, dc.IMAP); err != nil {
			return err
		}
		defer base.stop(5 * time.Second)
	}
	ng, err := startNginx(nginxOptions{
		Bin: o.Nginx, Module: o.NginxModule, Dir: filepath.Join(dir, "nginx"),
		Plain: []string{ngPlain}, TLS: []string{ngTLS}, Upstream: dc.IMAP, Cert: cert,
		Sessions: 1000,
	})
	if err != nil {
		return err
	}
	defer ng.close()

	clientTLS := clientTLSConfig(cert.CA, dc.CAPool)
	var ts []target
	for _, v := range []string{variantPlain, variantTLS} {
		tc, direct, i := (*tls.Config)(nil), dc.IMAP, 0
		if v == variantTLS {
			tc, direct, i = clientTLS, dc.IMAPS, 1
		}
		ts = append(ts,
			target{Variant: v, Path: pathDirect, Addr: direct, TLS: tc},
			target{Variant: v, Path: pathImapwhy, Addr: iw.addrs[i], TLS: tc, Proxy: iw})
		if base != nil {
			ts = append(ts, target{Variant: v, Path: pathBaseline, Addr: base.addrs[i], TLS: tc, Proxy: base})
		}
		ts = append(ts, target{Variant: v, Path: pathNginx, Addr: addrs[i], TLS: tc, Proxy: ng})
	}
	ts = slices.DeleteFunc(ts, func(t target) bool { return !o.wantVariant(t.Variant) })
	if o.Hold {
		for _, t := range ts {
			fmt.Printf("%-24s %s\n", t, t.Addr)
		}
		log.Printf("holding; the work directory is %s; ^C ends", dir)
		<-ctx.Done()
		return nil
	}
	if o.want("bulk") {
		log.Print("bulk FETCH")
		if rep.Bulk, err = benchBulk(ctx, ts, o.BulkRounds, o.Messages, o.MessageSize); err != nil {
			return fmt.Errorf("bulk: %w", err)
		}
	}
	if o.want("login") {
		log.Print("logins")
		if rep.Login, err = benchLogin(ctx, ts, o.Rounds, o.LoginConc, o.LoginTime); err != nil {
			return fmt.Errorf("login: %w", err)
		}
	}
	if o.want("noop") {
		log.Print("NOOP round trips")
		if rep.Noop, err = benchNoop(ctx, ts, o.Rounds, o.Noops); err != nil {
			return fmt.Errorf("noop: %w", err)
		}
	}
	return nil
}

// startImapwhyFor runs bin with two listeners in front of upstream (a
// plaintext address): plaintext, then implicit TLS.
func startImapwhyFor(bin, dir, name string, cert *proxyCert, shield bool, upstream string) (*imapwhyProc, error) {
	addrs, err := freeAddrs(2)
	if err != nil {
		return nil, err
	}
	return startImapwhy(imapwhyOptions{
		Bin: bin, Dir: dir, Name: name, Cert: cert, Shield: shield,
		Listeners: []imapwhyListener{
			{Address: addrs[0], TLS: config.TLSNone, Upstream: upstream},
			{Address: addrs[1], TLS: config.TLSImplicit, Upstream: upstream},
		},
	})
}

// runIdleBenches holds idle TLS sessions through imapwhy (and the
// baseline), then through nginx, each alone on the machine, in front of
// an in-memory upstream in a process of its own. A proxy that cannot
// hold every level ends its test with what it held; the next proxy is
// measured all the same.
func runIdleBenches(ctx context.Context, o options, dir string, cert *proxyCert, rep *report) error {
	// 127.0.0.3: the proxies' connections to the upstream do not share
	// ephemeral ports with the clients' connections to the proxies.
	up, upAddr, err := startMemUpstream(dir, "127.0.0.3")
	if err != nil {
		return err
	}
	defer up.stop(5 * time.Second)
	clientTLS := clientTLSConfig(cert.CA, nil)
	most := o.Sessions[len(o.Sessions)-1]

	imapwhys := []struct{ path, bin string }{{pathImapwhy, o.Imapwhy}}
	if o.Baseline != "" {
		imapwhys = append(imapwhys, struct{ path, bin string }{pathBaseline, o.Baseline})
	}
	for _, p := range imapwhys {
		log.Printf("idle sessions through %s, up to %d", p.path, most)
		addrs, err := freeAddrs(1)
		if err != nil {
			return err
		}
		iw, err := startImapwhy(imapwhyOptions{
			Bin: p.bin, Dir: dir, Name: p.path + "-idle", Cert: cert, Shield: o.Shield, Admin: true,
			Listeners: []imapwhyListener{{Address: addrs[0], TLS: config.TLSImplicit, Upstream: upAddr}},
		})
		if err != nil {
			return err
		}
		t := target{Variant: variantTLS, Path: p.path, Addr: addrs[0], TLS: clientTLS, Proxy: iw}
		rep.Idle = append(rep.Idle, idleMemory(ctx, t, o.Sessions, o.Settle, up.pid()))
		if err := iw.stop(10 * time.Second); err != nil {
			log.Print(err)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}

	log.Printf("idle sessions through nginx, up to %d", most)
	addrs, err := freeAddrs(1)
	if err != nil {
		return err
	}
	ng, err := startNginx(nginxOptions{
		Bin: o.Nginx, Module: o.NginxModule, Dir: filepath.Join(dir, "nginx-idle"),
		TLS: addrs, Upstream: upAddr, Cert: cert, Sessions: most,
	})
	if err != nil {
		return err
	}
	defer ng.close()
	t := target{Variant: variantTLS, Path: pathNginx, Addr: addrs[0], TLS: clientTLS, Proxy: ng}
	rep.Idle = append(rep.Idle, idleMemory(ctx, t, o.Sessions, o.Settle, up.pid()))
	return ctx.Err()
}

// clientTLSConfig is the one client TLS configuration of every TLS path:
// TLS 1.3, X25519 only (OpenSSL 3.0 in Dovecot and nginx has no
// post-quantum key exchange, Go's default would give imapwhy a different
// handshake), no session resumption, so every login pays a full
// handshake everywhere.
func clientTLSConfig(proxyCA *x509.Certificate, dovecotCAs *x509.CertPool) *tls.Config {
	roots := x509.NewCertPool()
	if dovecotCAs != nil {
		roots = dovecotCAs.Clone()
	}
	roots.AddCert(proxyCA)
	return &tls.Config{
		RootCAs:          roots,
		ServerName:       "localhost",
		MinVersion:       tls.VersionTLS13,
		CurvePreferences: []tls.CurveID{tls.X25519},
	}
}

// freeAddrs returns n distinct free addresses on 127.0.0.1.
func freeAddrs(n int) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	for len(out) < n {
		a, err := freeAddr("127.0.0.1")
		if err != nil {
			return nil, err
		}
		if !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	return out, nil
}

// loadAverage is the first three fields of /proc/loadavg.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
