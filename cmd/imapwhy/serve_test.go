package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/imapwhy/imapwhy/internal/testkit"
)

// buildImapwhy builds the command once per test binary run.
func buildImapwhy(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "imapwhy")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// serveProcess is `imapwhy serve` running as a child process.
type serveProcess struct {
	t      *testing.T
	cmd    *exec.Cmd
	lines  chan string
	stderr *testkit.Buffer // the child's, written by exec's copying goroutine
}

func startServe(t *testing.T, bin, configFile string) *serveProcess {
	t.Helper()
	return startProcess(t, exec.Command(bin, "serve", "--config", configFile))
}

// startProcess starts cmd (imapwhy serve with its arguments) and reads its
// standard output line by line; it is killed at the end of the test.
func startProcess(t *testing.T, cmd *exec.Cmd) *serveProcess {
	t.Helper()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &serveProcess{t: t, cmd: cmd, lines: make(chan string, 100), stderr: &testkit.Buffer{}}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
	}()
	return p
}

// expect returns the first stdout line matching re, within 20 s.
func (p *serveProcess) expect(re string) []string {
	p.t.Helper()
	rx := regexp.MustCompile(re)
	timeout := time.After(20 * time.Second)
	for {
		select {
		case l, ok := <-p.lines:
			if !ok {
				p.t.Fatalf("serve ended before printing %q; stderr:\n%s", re, p.stderr)
			}
			if m := rx.FindStringSubmatch(l); m != nil {
				return m
			}
		case <-timeout:
			p.t.Fatalf("serve did not print %q within 20s", re)
		}
	}
}

// next returns the next stdout line, within 20 s.
func (p *serveProcess) next() string {
	p.t.Helper()
	select {
	case l, ok := <-p.lines:
		if !ok {
			p.t.Fatalf("serve ended; stderr:\n%s", p.stderr)
		}
		return l
	case <-time.After(20 * time.Second):
		p.t.Fatal("serve printed nothing more within 20s")
	}
	return ""
}

// regexpURL finds the plain set-up link serve --lan prints under its QR code.
var regexpURL = regexp.MustCompile(`^imapwhy: or open (http://\S+)$`)

// caPool returns a pool trusting the CA certificate in caFile (the local
// CA imapwhy serve prints).
func caPool(t *testing.T, caFile string) *x509.CertPool {
	t.Helper()
	pem, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("%s holds no certificate", caFile)
	}
	return pool
}

// loginNo logs in with a wrong password through an implicit-TLS listener
// whose certificate must verify against ca, and returns the tagged NO line.
func loginNo(t *testing.T, addr string, ca *x509.CertPool) string {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: ca, ServerName: "localhost"})
	if err != nil {
		t.Fatalf("TLS to the proxy, verified against its local CA: %v", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	br := bufio.NewReader(c)
	br.ReadString('\n')
	// The listener's language; Japanese text only once asked for.
	fmt.Fprintf(c, "l LANGUAGE DEFAULT\r\n")
	for l, _ := br.ReadString('\n'); !strings.HasPrefix(l, "l ") && l != ""; l, _ = br.ReadString('\n') {
	}
	fmt.Fprintf(c, "a1 LOGIN alice@example.com secret\r\n")
	for {
		l, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("reading the answer: %v", err)
		}
		if strings.HasPrefix(l, "a1 ") {
			return strings.TrimSpace(l)
		}
	}
}

// TestServe runs `imapwhy serve` as people do: it creates its local CA,
// prints the fingerprint, answers through TLS that verifies against that CA,
// reloads its configuration on SIGHUP (naming the web settings that need a
// restart) and exits cleanly on SIGTERM.
func TestServe(t *testing.T) {
	bin := buildImapwhy(t)
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "imapwhy.yaml")
	writeConfig := func(lang, extra string) {
		// The upstream is a closed port: every login fails with upstream.refused.
		cfg := fmt.Sprintf(`state_dir: %s
log: {format: json, level: info}
admin: {address: "127.0.0.1:0"}
limits: {failure_delay_base: 1ms, failure_delay_max: 1ms}
listeners:
  - address: 127.0.0.1:0
    tls: implicit
    language: %s
    upstream: {address: "127.0.0.1:1", tls: none}
%s`, filepath.Join(dir, "state"), lang, extra)
		if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeConfig("en", "web: {address: \"\"}\n") // the pages off: a second run binds 8443 otherwise
	p := startServe(t, bin, cfgFile)
	metricsURL := p.expect(`metrics on (http://\S+/metrics)`)[1]
	addr := p.expect(`listening on (\S+) \(implicit\)`)[1]
	caFile := p.expect(`local certificate authority (\S+)`)[1]
	fp := p.expect(`fingerprint[^:]*: (SHA256 [0-9A-F:]+)`)[1]
	if len(fp) != len("SHA256 ")+32*3-1 {
		t.Errorf("fingerprint %q is not a SHA-256 in hex pairs", fp)
	}
	ca := caPool(t, caFile)
	if no := loginNo(t, addr, ca); !strings.HasPrefix(no, "a1 NO [UNAVAILABLE] imapwhy cannot reach the mail server") || !strings.Contains(no, "listeners[].upstream") {
		t.Errorf("English answer for a refused upstream: %q", no)
	}

	_, body := testkit.Scrape(t, metricsURL)
	if !regexp.MustCompile(`imapwhy_login_failures_total\{cause="upstream.refused",provider="[a-z]+"\} 1`).MatchString(body) {
		t.Errorf("metrics do not count the failure:\n%s", body)
	}

	writeConfig("ja", "web: {address: \"127.0.0.1:0\"}\n")
	p.cmd.Process.Signal(syscall.SIGHUP)
	deadline := time.Now().Add(10 * time.Second)
	for {
		no := loginNo(t, addr, ca)
		if strings.Contains(no, "ポート") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after SIGHUP the answer is still %q; stderr:\n%s", no, p.stderr)
		}
		time.Sleep(100 * time.Millisecond)
	}

	p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() {
		for range p.lines {
		}
		done <- p.cmd.Wait()
	}()
	if err := testkit.Receive(t, done, 20*time.Second, "serve to exit after SIGTERM"); err != nil {
		t.Errorf("exit after SIGTERM: %v", err)
	}
	logs := p.stderr.String()
	for _, want := range []string{`"event":"auth_failure"`, `"cause":"upstream.refused"`, `"event":"reloaded"`,
		`"event":"reload_needs_restart","keys":["web.address"]`, `"event":"notify_reloaded"`, `"event":"shutdown"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %s:\n%s", want, logs)
		}
	}
	if strings.Contains(logs, "secret") {
		t.Error("the password reached the log")
	}
}
