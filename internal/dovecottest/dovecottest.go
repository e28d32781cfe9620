// Package dovecottest runs a real Dovecot IMAP server (Debian's
// dovecot-imapd, 2.3) for tests: self-contained (its own dovecot.conf, no
// /etc/dovecot), on free loopback ports, with its own certificates and
// users, stopped and removed when the test ends.
//
//	srv := dovecottest.Start(t, dovecottest.Options{})
//	c, err := imapclient.DialTLS(srv.IMAPS, &imapclient.Options{
//		TLSConfig: &tls.Config{RootCAs: srv.CAPool},
//	})
//	...
//	err = c.Login("alice", "alicepass").Wait()
//
// A missing dovecot binary or Lua passdb module fails the test (it never
// skips): run scripts/test, which installs dovecot-core, dovecot-imapd and
// dovecot-auth-lua.
//
// # Addresses
//
//   - IMAP: 127.0.0.1, plain with STARTTLS. Dovecot counts loopback
//     connections whose remote and local address are equal as secured, so
//     LOGIN is allowed here even before STARTTLS.
//   - IMAPS: 127.0.0.1, implicit TLS.
//   - Insecure: the IMAP port on 127.0.0.2. Dialled from 127.0.0.1 it is
//     not secured: the greeting has LOGINDISABLED and no AUTH=PLAIN, LOGIN
//     gets "NO [PRIVACYREQUIRED]" until STARTTLS.
//
// The certificate is valid for localhost, 127.0.0.1, 127.0.0.2 and ::1 and
// signed by a CA made for this server (CAPEM, CAPool).
//
// # Users and what Dovecot 2.3.19 answers
//
//	alice / alicepass, bob / bobpass       OK [CAPABILITY ...] Logged in
//	carol@example.test / carolpass         a full address as user name ("carol" is unknown)
//	utf8 / UTF8Password ("pässwörd")       8-bit password bytes
//	any wrong password, unknown user       NO [AUTHENTICATIONFAILED] Authentication failed. (after ~0.5 s)
//	nologin / nologinpass                  NO [CONTACTADMIN] Login disabled for this user
//	disabled / disabledpass                NO [CONTACTADMIN] Account_disabled_by_test_admin (DisabledReason)
//	disabled2 / any password               NO [CONTACTADMIN] Your account is disabled: contact support@example.invalid (Disabled2Reason)
//	tempfail* / any password               NO [UNAVAILABLE] Temporary authentication failure. [host:date time] (~0.5 s)
//	expired / any password                 NO [EXPIRED] Password expired (~0.5 s)
//	one session too many (Options)         NO [LIMIT] Maximum number of connections from user+IP exceeded (mail_max_userip_connections=N)
//	LOGIN on Insecure before STARTTLS      * BAD [ALERT] Plaintext authentication not allowed ... then NO [PRIVACYREQUIRED] ...
//
// nologin and disabled answer so only with the right password; with a wrong
// one they fail like any other. "expired" comes from a Lua passdb
// (dovecot-auth-lua): Dovecot 2.3 says EXPIRED only for a passdb result
// "password expired", which passwd-file and checkpassword cannot give; the
// text is Dovecot's own. More users: AddUser; password changes:
// SetPassword (no restart; each returns when Dovecot will see the change,
// within a second). Mail: Maildir under
// Dir, filled by APPEND or Deliver; the COMPRESS=DEFLATE extension is on
// when Dovecot's imap_zlib plugin is installed (it is in Debian's
// dovecot-core).
//
// With Options.OAuth2, XOAUTH2 and OAUTHBEARER are on too, checked by an
// OAuth provider's introspection endpoint (internal/oauthtest runs one);
// see OAuth2 for what Dovecot answers.
//
// Settings worth knowing: disable_plaintext_auth = yes, auth_mechanisms =
// plain login, auth_failure_delay = 0 and anvil's auth penalty switched off
// (failures still take ~0.5 s: Dovecot flushes them on a 500 ms timer),
// mail_max_userip_connections from Options. For load tests,
// Options.MaxSessions lets one imap process serve many sessions (Dovecot
// otherwise forks one per session, at most 1024).
//
// # Lifetime
//
// As root, Dovecot's processes run as the users Debian's package creates
// (dovenull, dovecot) and mail as nobody; otherwise all as the current user.
// Dovecot runs as "dovecot -F" in its own process group, in a short
// directory /tmp/dvt-* (Unix socket paths are limited to 108 bytes), and is
// stopped and removed by t.Cleanup. If the test binary dies without its
// cleanup, the kernel sends Dovecot SIGTERM (Linux), and the next Start
// kills any instance whose test binary is gone and removes its directory.
package dovecottest

import (
	"context"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Options change the Dovecot configuration. The zero value is fine.
type Options struct {
	// MaxUserIPConnections is mail_max_userip_connections: how many IMAP
	// sessions one user may have from one IP address. 0 means 1000.
	MaxUserIPConnections int
	// MaxSessions is how many IMAP sessions Dovecot must serve at once,
	// for load tests. 0 means Dovecot's defaults: one imap process per
	// session, at most 1024. Otherwise each imap process serves up to
	// sessionsPerProcess sessions (every test user maps to the same
	// system user, which this needs), and the limits of the other
	// services grow to match.
	MaxSessions int
	// TrustedNetworks is login_trusted_networks, e.g. "127.0.0.1/32".
	// Dovecot then takes the client's address from an ID command's
	// x-originating-ip, and treats connections from these networks as
	// secured (so Insecure no longer shows LOGINDISABLED). Empty: none.
	TrustedNetworks []string
	// OAuth2, when set, switches on XOAUTH2 and OAUTHBEARER, checked
	// against an OAuth provider (see OAuth2).
	OAuth2 *OAuth2
	// HAProxy adds an implicit-TLS IMAP listener (Server.HAProxyIMAPS)
	// that requires a PROXY header (haproxy = yes) from loopback
	// (haproxy_trusted_networks) before the TLS handshake, for proxies
	// that send one. (Dovecot takes the header's address as the client's,
	// so a plain listener would refuse LOGIN from a remote one.)
	HAProxy bool
}

// Server is a running Dovecot. Its fields are read-only; its methods are
// safe for concurrent use.
type Server struct {
	// Dir is the instance's directory: dovecot.conf, dovecot.log,
	// the passwd-file, certificates and the Maildirs under mail/.
	Dir string
	// IMAP is 127.0.0.1:port, plain with STARTTLS (secured: LOGIN allowed).
	IMAP string
	// IMAPS is 127.0.0.1:port with implicit TLS.
	IMAPS string
	// Insecure is 127.0.0.2 with IMAP's port: not secured, LOGINDISABLED.
	Insecure string
	// HAProxyIMAPS is 127.0.0.1:port, a PROXY header then implicit TLS;
	// "" unless Options.HAProxy.
	HAProxyIMAPS string
	// CAPEM is the PEM certificate of the CA that signed Dovecot's
	// certificate; CAPool holds it.
	CAPEM  []byte
	CAPool *x509.CertPool

	t    testing.TB
	acct accounts

	mu          sync.Mutex
	users       []user
	passwdStamp time.Time // mtime of the last passwd-file written
	deliveries  int
	proc        *process
	stopped     bool
}

// Start starts Dovecot and returns once it greets on IMAP. Everything is
// stopped and removed when t ends; Dovecot's log tail is printed if t failed.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	bin, err := dovecotBinary()
	if err != nil {
		t.Fatal(err)
	}
	reapStale(t.Logf)
	acct, err := lookupAccounts()
	if err != nil {
		t.Fatalf("dovecottest: %v", err)
	}
	s := &Server{t: t, acct: acct, users: defaultUsers()}
	if err := s.prepareDir(); err != nil {
		t.Fatalf("dovecottest: %v", err)
	}
	if err := s.writeFiles(); err != nil {
		t.Fatalf("dovecottest: %v", err)
	}
	if opts.OAuth2 != nil {
		if err := s.writeOAuth2(opts.OAuth2); err != nil {
			t.Fatalf("dovecottest: %v", err)
		}
	}
	if err := s.launch(bin, opts); err != nil {
		_ = s.stopProcess()
		t.Fatalf("dovecottest: %v\n%s", err, s.LogTail(30))
	}
	t.Cleanup(s.cleanup)
	return s
}

// prepareDir creates the instance directory, readable by Dovecot's
// unprivileged users, and registers its removal.
func (s *Server) prepareDir() error {
	dir, err := os.MkdirTemp(stateRoot, dirPrefix)
	if err != nil {
		return err
	}
	s.t.Cleanup(func() {
		if err := os.RemoveAll(dir); err != nil {
			s.t.Errorf("dovecottest: %v", err)
		}
	})
	s.Dir = dir
	if err := os.Chmod(dir, 0o755); err != nil {
		return err
	}
	if err := writeOwner(dir); err != nil {
		return err
	}
	for _, d := range []string{"certs", "state"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			return err
		}
	}
	if err := os.Mkdir(s.mailDir(), 0o755); err != nil {
		return err
	}
	return os.Chown(s.mailDir(), s.acct.mailUID, s.acct.mailGID)
}

// writeFiles writes the certificates, the passwd-file and the
// checkpassword program.
func (s *Server) writeFiles() error {
	certs, err := newCertSet()
	if err != nil {
		return err
	}
	s.CAPEM = certs.caPEM
	s.CAPool = x509.NewCertPool()
	s.CAPool.AppendCertsFromPEM(certs.caPEM)
	files := []struct {
		path string
		data []byte
		mode os.FileMode
	}{
		{filepath.Join(s.Dir, "certs", "ca.pem"), certs.caPEM, 0o644},
		{s.certPath(), certs.certPEM, 0o644},
		{s.keyPath(), certs.keyPEM, 0o600}, // read by the master, as root
	}
	for _, f := range files {
		if err := os.WriteFile(f.path, f.data, f.mode); err != nil {
			return err
		}
	}
	if err := s.writeSecret(s.checkpasswordPath(), []byte(checkpasswordScript), 0o750, time.Time{}); err != nil {
		return fmt.Errorf("write checkpassword program: %w", err)
	}
	if err := s.writeSecret(s.expiredLuaPath(), []byte(expiredLua), 0o640, time.Time{}); err != nil {
		return fmt.Errorf("write Lua passdb: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writePasswdLocked()
}

// launch starts Dovecot on fresh ports, retrying when another process took
// a port between freePorts and Dovecot's bind.
func (s *Server) launch(bin string, opts Options) error {
	var err error
	for attempt := 1; attempt <= 3; attempt++ {
		err = s.launchOnce(bin, opts)
		if err == nil || !s.bindRace() {
			return err
		}
		s.t.Logf("dovecottest: port taken before Dovecot bound it, retrying (%v)", err)
		_ = s.stopProcess()
	}
	return err
}

func (s *Server) launchOnce(bin string, opts Options) error {
	plain, tlsPort, err := freePorts()
	if err != nil {
		return err
	}
	s.IMAP = net.JoinHostPort("127.0.0.1", strconv.Itoa(plain))
	s.IMAPS = net.JoinHostPort("127.0.0.1", strconv.Itoa(tlsPort))
	s.Insecure = net.JoinHostPort("127.0.0.2", strconv.Itoa(plain))
	haproxyPort := 0
	if opts.HAProxy {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		haproxyPort = l.Addr().(*net.TCPAddr).Port
		l.Close()
		s.HAProxyIMAPS = net.JoinHostPort("127.0.0.1", strconv.Itoa(haproxyPort))
	}
	conf, err := s.renderConf(opts, plain, tlsPort, haproxyPort)
	if err != nil {
		return err
	}
	if err := os.WriteFile(s.confPath(), conf, 0o644); err != nil {
		return err
	}
	// Each attempt starts with fresh output, so bindRace reads only this one.
	_ = os.Remove(s.logPath())
	_ = os.Remove(s.outPath())
	p, err := startProcess(bin, s.confPath(), s.outPath())
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.proc, s.stopped = p, false
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	return waitGreeting(ctx, s.IMAP, p)
}

func (s *Server) renderConf(opts Options, plain, tlsPort, haproxyPort int) ([]byte, error) {
	maxUserIP := opts.MaxUserIPConnections
	if maxUserIP == 0 {
		maxUserIP = 1000
	}
	if maxUserIP < 0 {
		return nil, fmt.Errorf("Options.MaxUserIPConnections %d is negative", maxUserIP)
	}
	if opts.MaxSessions < 0 {
		return nil, fmt.Errorf("Options.MaxSessions %d is negative", opts.MaxSessions)
	}
	for _, n := range opts.TrustedNetworks {
		if !confValueOK(n) {
			return nil, fmt.Errorf("Options.TrustedNetworks: %q is not a network", n)
		}
	}
	_, zlibErr := os.Stat(filepath.Join(moduleDir, "lib30_imap_zlib_plugin.so"))
	oauth2Conf := ""
	if opts.OAuth2 != nil {
		oauth2Conf = s.oauth2ConfPath()
	}
	return renderConf(confData{
		Instance:        filepath.Base(s.Dir),
		RunDir:          filepath.Join(s.Dir, "run"),
		StateDir:        filepath.Join(s.Dir, "state"),
		LogPath:         s.logPath(),
		CertPath:        s.certPath(),
		KeyPath:         s.keyPath(),
		PasswdFile:      s.passwdFile(),
		Checkpassword:   s.checkpasswordPath(),
		MailDir:         s.mailDir(),
		LoginUser:       s.acct.loginUser,
		InternalUser:    s.acct.internalUser,
		InternalGroup:   s.acct.internalGroup,
		MailUID:         s.acct.mailUID,
		MailGID:         s.acct.mailGID,
		Chroot:          s.acct.root,
		IMAPPort:        plain,
		IMAPSPort:       tlsPort,
		HAProxyPort:     haproxyPort,
		ExpiredLua:      s.expiredLuaPath(),
		MaxUserIP:       maxUserIP,
		TrustedNetworks: strings.Join(opts.TrustedNetworks, " "),
		Zlib:            zlibErr == nil,
		Sessions:        sessionLimits(opts.MaxSessions),
		OAuth2Conf:      oauth2Conf,
	})
}

// bindRace reports whether Dovecot failed because a port was taken.
func (s *Server) bindRace() bool {
	for _, p := range []string{s.logPath(), s.outPath()} {
		if b, err := os.ReadFile(p); err == nil && strings.Contains(string(b), "Address already in use") {
			return true
		}
	}
	return false
}

// Stop stops Dovecot (SIGTERM to its process group, SIGKILL after 5 s);
// connections to its addresses are refused afterwards. It is called by
// t.Cleanup and may be called earlier, more than once.
func (s *Server) Stop() {
	if err := s.stopProcess(); err != nil {
		s.t.Errorf("dovecottest: %v", err)
	}
}

func (s *Server) stopProcess() error {
	s.mu.Lock()
	p := s.proc
	s.stopped = true
	s.mu.Unlock()
	if p == nil {
		return nil
	}
	return p.stop()
}

// cleanup stops Dovecot, failing the test if Dovecot had died on its own,
// and prints the log tail when the test failed.
func (s *Server) cleanup() {
	s.mu.Lock()
	p, stopped := s.proc, s.stopped
	s.mu.Unlock()
	if !stopped && p.Exited() {
		s.t.Errorf("dovecottest: dovecot exited during the test: %v", p.Err())
	}
	s.Stop()
	if s.t.Failed() {
		s.t.Logf("dovecottest: tail of %s:\n%s", s.logPath(), s.LogTail(40))
	}
}

// LogTail returns the last n lines of Dovecot's log (and of what it wrote
// to stderr before its log was open).
func (s *Server) LogTail(n int) string {
	var lines []string
	for _, p := range []string{s.outPath(), s.logPath()} {
		b, err := os.ReadFile(p)
		if err != nil || len(b) == 0 {
			continue
		}
		lines = append(lines, strings.Split(strings.TrimRight(string(b), "\n"), "\n")...)
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// report marks t failed with err (safe from any goroutine) and returns it.
func (s *Server) report(op string, err error) error {
	if err != nil {
		err = fmt.Errorf("dovecottest: %s: %w", op, err)
		s.t.Errorf("%v", err)
	}
	return err
}

func (s *Server) confPath() string          { return filepath.Join(s.Dir, "dovecot.conf") }
func (s *Server) logPath() string           { return filepath.Join(s.Dir, "dovecot.log") }
func (s *Server) outPath() string           { return filepath.Join(s.Dir, "dovecot.out") }
func (s *Server) certPath() string          { return filepath.Join(s.Dir, "certs", "cert.pem") }
func (s *Server) keyPath() string           { return filepath.Join(s.Dir, "certs", "key.pem") }
func (s *Server) passwdFile() string        { return filepath.Join(s.Dir, "users.passwd") }
func (s *Server) checkpasswordPath() string { return filepath.Join(s.Dir, "checkpassword.sh") }
func (s *Server) expiredLuaPath() string    { return filepath.Join(s.Dir, "expired.lua") }
func (s *Server) mailDir() string           { return filepath.Join(s.Dir, "mail") }

// CAFile writes the certificate authority of Dovecot's certificate to a
// file in a temporary directory of t and returns its path, for a ca_file
// setting or --ca-file.
func (s *Server) CAFile(t testing.TB) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "dovecot-ca.pem")
	if err := os.WriteFile(path, s.CAPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
