//go:build unix

package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/imapwhy/imapwhy/internal/config"
	"github.com/imapwhy/imapwhy/internal/testkit"
)

const acmeDomain = "mail.example.test"

// TestACMEPebble obtains a certificate from a real ACME server (Pebble, run
// on loopback), serves it, and reuses it after a restart. "validated" lets
// Pebble check the challenge for real (HTTP-01 or TLS-ALPN-01, whichever
// acmez tries first) against certmagic's solver, with a DNS server in the
// test answering 127.0.0.1 for every name.
func TestACMEPebble(t *testing.T) {
	bin := buildPebble(t)
	prevHost := acmeListenHost
	acmeListenHost = "127.0.0.1"
	t.Cleanup(func() { acmeListenHost = prevHost })

	tests := []struct {
		name     string
		validate bool
	}{
		{"always valid", false},
		{"validated", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := startPebble(t, bin, tt.validate)
			stateDir := t.TempDir()
			cfg := config.TLS{ACME: &config.ACME{
				Domains:     []string{acmeDomain},
				Email:       "postmaster@example.test",
				CA:          p.dirURL,
				CARoot:      p.caFile,
				HTTPPort:    p.httpPort,
				TLSALPNPort: p.tlsPort,
			}}
			m := newACME(t, cfg, stateDir)
			if tt.validate && p.dns.Count() == 0 {
				t.Error("Pebble never looked the name up: the challenge was not validated")
			}

			addr := startTLSServer(t, m.TLSConfig())
			conn := dialTLS(t, addr, &tls.Config{RootCAs: p.roots, ServerName: acmeDomain})
			chain := conn.ConnectionState().PeerCertificates
			leaf := chain[0]
			if err := verifyChain(chain, p.roots, acmeDomain); err != nil {
				t.Errorf("served chain does not verify against Pebble's root: %v", err)
			}
			if !slices.Equal(leaf.DNSNames, []string{acmeDomain}) {
				t.Errorf("certificate names = %v, want [%s]", leaf.DNSNames, acmeDomain)
			}
			if got, want := m.Fingerprint(), fingerprint(leaf); got != want || m.LeafFingerprint() != want {
				t.Errorf("Fingerprint() = %q, LeafFingerprint() = %q, want both %q", got, m.LeafFingerprint(), want)
			}
			if m.CAFile() != "" {
				t.Errorf("CAFile() = %q in ACME mode, want \"\"", m.CAFile())
			}
			echo(t, conn)

			// A client that sends no SNI (connecting by address) gets the
			// certificate too.
			noSNI := &tls.Config{
				InsecureSkipVerify: true, // verified below, for the domain
				VerifyConnection: func(cs tls.ConnectionState) error {
					return verifyChain(cs.PeerCertificates, p.roots, acmeDomain)
				},
			}
			if got := peerLeaf(t, addr, noSNI); !got.Equal(leaf) {
				t.Errorf("handshake without SNI served %v, want the ACME certificate", got.DNSNames)
			}

			// A restart loads the certificate from the state directory.
			m.Close()
			again := newACME(t, cfg, stateDir)
			if got := again.LeafFingerprint(); got != fingerprint(leaf) {
				t.Errorf("after a restart LeafFingerprint() = %q, want the stored certificate's %q", got, fingerprint(leaf))
			}
		})
	}
}

func newACME(t *testing.T, cfg config.TLS, stateDir string) *Manager {
	t.Helper()
	log, _ := testLog(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	m, err := New(ctx, cfg, stateDir, log)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func verifyChain(chain []*x509.Certificate, roots *x509.CertPool, name string) error {
	if len(chain) == 0 {
		return errors.New("no certificate")
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	_, err := chain[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, DNSName: name})
	return err
}

// buildPebble builds Pebble at the version go.mod requires; the Go build
// cache makes every build after the first one a link.
func buildPebble(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("building Pebble needs the go command: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "pebble")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	cmd := exec.CommandContext(ctx, goBin, "build", "-o", bin, "github.com/letsencrypt/pebble/v2/cmd/pebble")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build pebble: %v\n%s", err, out)
	}
	t.Logf("built pebble in %v", time.Since(start).Round(time.Millisecond))
	return bin
}

// pebble is a running Pebble ACME server.
type pebble struct {
	dirURL            string
	caFile            string         // PEM of the CA behind Pebble's own HTTPS
	roots             *x509.CertPool // the root Pebble issues certificates under
	httpPort, tlsPort int            // where Pebble's VA checks challenges
	dns               *testkit.DNS   // Pebble's VA looks names up here, when it validates
}

// startPebble runs Pebble on loopback ports with a configuration and TLS
// certificate of the test's own, and waits for its directory. With
// validate, a DNS server of the test answers 127.0.0.1 for every name and
// Pebble checks challenges; otherwise it accepts them unchecked.
func startPebble(t *testing.T, bin string, validate bool) *pebble {
	t.Helper()
	dir := t.TempDir()
	pki := testkit.NewCA(t, "pebble HTTPS CA")
	certPEM, keyPEM := issuePEM(t, pki, time.Now().Add(time.Hour), "localhost", "127.0.0.1")
	p := &pebble{caFile: filepath.Join(dir, "ca.pem"), httpPort: testkit.FreePort(t), tlsPort: testkit.FreePort(t)}
	writeFile(t, p.caFile, pki.PEM())
	writeFile(t, filepath.Join(dir, "cert.pem"), certPEM)
	writeFile(t, filepath.Join(dir, "key.pem"), keyPEM)

	acmeAddr := fmt.Sprintf("127.0.0.1:%d", testkit.FreePort(t))
	mgmtAddr := fmt.Sprintf("127.0.0.1:%d", testkit.FreePort(t))
	p.dirURL = "https://" + acmeAddr + "/dir"
	conf := map[string]any{"pebble": map[string]any{
		"listenAddress":           acmeAddr,
		"managementListenAddress": mgmtAddr,
		"certificate":             filepath.Join(dir, "cert.pem"),
		"privateKey":              filepath.Join(dir, "key.pem"),
		"httpPort":                p.httpPort,
		"tlsPort":                 p.tlsPort,
		"ocspResponderURL":        "",
		"retryAfter":              map[string]int{"authz": 1, "order": 1},
		"keyAlgorithm":            "ecdsa",
		// One profile only: with several, Pebble picks one at random for
		// orders that name none, as certmagic's do.
		"profiles": map[string]any{"default": map[string]any{
			"description":    "the only profile",
			"validityPeriod": 90 * 24 * 3600,
		}},
	}}
	confJSON, err := json.Marshal(conf)
	if err != nil {
		t.Fatal(err)
	}
	confFile := filepath.Join(dir, "pebble-config.json")
	writeFile(t, confFile, confJSON)

	args := []string{"-config", confFile}
	alwaysValid := "1"
	if validate {
		// Every A query is answered with 127.0.0.1. Pebble's VA asks over
		// TCP.
		p.dns = testkit.NewDNS(t)
		p.dns.AnswerAll(dns.TypeA, "127.0.0.1")
		args = append(args, "-dnsserver", p.dns.TCPAddr())
		alwaysValid = "0"
	}
	logFile, err := os.Create(filepath.Join(dir, "pebble.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close() // the child has its own descriptor
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"PEBBLE_VA_ALWAYS_VALID="+alwaysValid,
		"PEBBLE_VA_NOSLEEP=1",
		"PEBBLE_WFE_NONCEREJECT=0",
	)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting pebble: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // the whole process group
		<-exited
		if t.Failed() {
			out, _ := os.ReadFile(logFile.Name())
			t.Logf("pebble log:\n%s", out)
		}
	})

	client := &http.Client{
		Timeout:   5 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pki.Pool()}, DisableKeepAlives: true},
	}
	waitDirectory(t, client, p.dirURL, exited)
	p.roots = fetchRoots(t, client, "https://"+mgmtAddr+"/roots/0")
	return p
}

// waitDirectory polls the ACME directory until it answers 200.
func waitDirectory(t *testing.T, client *http.Client, url string, exited <-chan error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			err = fmt.Errorf("status %s", resp.Status)
		}
		if time.Now().After(deadline) {
			t.Fatalf("pebble directory %s not ready: %v", url, err)
		}
		select {
		case err := <-exited:
			t.Fatalf("pebble exited: %v", err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// fetchRoots gets the root Pebble issues under (new on every start).
func fetchRoots(t *testing.T, client *http.Client, url string) *x509.CertPool {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("pebble roots: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("pebble roots: %s, %v", resp.Status, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(body) {
		t.Fatalf("pebble roots: no certificate in %q", body)
	}
	return pool
}
