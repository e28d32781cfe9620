package check

// The steps that reach the server: discovery, DNS, TCP, TLS.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/imapwhy/imapwhy/diagnose"
	"github.com/imapwhy/imapwhy/internal/config"
	"github.com/imapwhy/imapwhy/internal/discover"
	"github.com/imapwhy/imapwhy/internal/upstream"
)

// discover decides the server: Options.Server, or discovery from the
// address. The login name becomes discovery's, when it knows one.
func (r *runner) discover(ctx context.Context, s *Step) error {
	if r.opts.Server != "" {
		r.setServer(Server{Host: r.opts.host, Port: r.opts.port, TLS: r.opts.mode, Source: SourceFlag}, r.address)
		s.Summary = r.t("%s, given with --server", r.where())
		return nil
	}
	res, err := r.discoverer().Lookup(ctx, r.address)
	if err != nil {
		r.obs.Phase = diagnose.PhaseProxy // no server to ask: the proxy would refuse on its own
		s.Summary = r.discoveryFailure(err)
		s.Details = append(s.Details, discoverySteps(err)...)
		return fmt.Errorf("discovery: %w", err)
	}
	user := res.Username
	if user == "" {
		user = r.address
	}
	r.setServer(Server{
		Host: res.Host, Port: res.Port, TLS: res.TLS,
		Source: res.Source, Detail: res.Detail, Provider: res.Provider,
	}, user)
	s.Summary = r.t("%s, found in %s", r.where(), r.t(sourceName(res.Source)))
	if res.Detail != "" && res.Source != discover.SourceCatalog {
		s.Details = append(s.Details, "from: "+res.Detail)
	}
	if user != r.address {
		s.Details = append(s.Details, r.t("user name: %s", user))
	}
	return nil
}

// discoverer is Options.Discover or one with the built-in catalog, made
// once.
func (r *runner) discoverer() *discover.Discoverer {
	if r.disc == nil {
		r.disc = r.opts.Discover
	}
	if r.disc == nil {
		opts := discover.Options{Catalog: discover.BuiltinCatalog}
		if r.opts.Resolver != nil {
			opts.Resolver = r.opts.Resolver
		}
		r.disc = discover.New(opts)
	}
	return r.disc
}

// setServer records where the check goes and with which login name.
func (r *runner) setServer(srv Server, user string) {
	r.report.Server = srv
	r.report.User = user
	r.host, r.port, r.mode = srv.Host, srv.Port, srv.TLS
	r.obs.Host, r.obs.Port, r.obs.TLSMode = srv.Host, srv.Port, srv.TLS
	r.obs.Typed = diagnose.Facts(user, r.password)
}

// where is "host port N, mode" for people.
func (r *runner) where() string {
	return r.t("%s port %d, %s", r.host, r.port, r.t(modeName(r.mode)))
}

// modeNames and sourceNames name TLS modes and discovery sources for
// people; what they do not list is shown as it is.
var (
	modeNames = map[string]string{
		config.TLSImplicit: "SSL/TLS",
		config.TLSStartTLS: "STARTTLS",
		config.TLSNone:     "no encryption",
	}
	sourceNames = map[string]string{
		discover.SourceCatalog:    "the built-in provider list",
		discover.SourceAutoconfig: "the domain's autoconfig file",
		discover.SourceSRV:        "DNS SRV records",
		discover.SourceMX:         "the domain's MX records",
	}
)

func modeName(mode string) string { return nameFor(modeNames, mode) }

func sourceName(source string) string { return nameFor(sourceNames, source) }

func nameFor(names map[string]string, key string) string {
	if name, ok := names[key]; ok {
		return name
	}
	return key
}

// discoveryFailure says in one line why discovery found nothing.
func (r *runner) discoveryFailure(err error) string {
	switch {
	case errors.Is(err, discover.ErrNotAnAddress):
		return r.t("not an email address: give the whole address, or the server with --server")
	case errors.Is(err, discover.ErrNotFound):
		return r.t("no IMAP server known for this domain: give it with --server")
	case errors.Is(err, discover.ErrPrivateAddress):
		return r.t("refused: what was found points to a private or local address")
	case errors.Is(err, discover.ErrDomainNotAllowed):
		return r.t("this domain is not allowed")
	}
	return r.t("discovery did not finish: %s", err.Error())
}

// discoverySteps is why each source had nothing.
func discoverySteps(err error) []string {
	nf, ok := errors.AsType[*discover.NotFoundError](err)
	if !ok {
		return nil
	}
	var lines []string
	for _, e := range nf.Steps {
		for line := range strings.SplitSeq(e.Error(), "\n") { // errors.Join puts one per line
			lines = append(lines, printable(line, maxShown))
		}
	}
	return lines
}

// resolve looks up the host's addresses.
func (r *runner) resolve(ctx context.Context, s *Step) error {
	r.obs.Phase = diagnose.PhaseDial
	ctx, cancel := context.WithTimeout(ctx, dnsTimeout)
	defer cancel()
	addrs, err := r.lookup(ctx)
	if errors.Is(err, discover.ErrPrivateAddress) {
		s.Summary = r.t("the server found for this address is on a private or local network address; not checked (give it with --server to check it anyway)")
		return fmt.Errorf("resolve %s: %w", r.host, err)
	}
	if err != nil {
		r.obs.NetError = diagnose.NetErrorOf(err)
		switch r.obs.NetError {
		case diagnose.NetDNSNotFound:
			s.Summary = r.t("%s does not exist in DNS", r.host)
		case diagnose.NetDNSUnavailable:
			s.Summary = r.t("DNS is not answering, so %s could not be looked up (the name may be fine)", r.host)
		default:
			s.Summary = r.t("the DNS lookup of %s failed", r.host)
			if r.obs.NetError == diagnose.NetOK {
				s.Diagnosis = r.unexplained(err)
			}
		}
		return fmt.Errorf("resolve %s: %w", r.host, err)
	}
	for _, a := range addrs {
		r.addrs = append(r.addrs, a.Unmap())
		r.report.Server.Addresses = append(r.report.Server.Addresses, a.Unmap().String())
	}
	s.Summary = r.t("%s is %s", r.host, strings.Join(r.report.Server.Addresses, ", "))
	if _, err := netip.ParseAddr(r.host); err == nil {
		s.Summary = r.t("%s is an IP address: nothing to look up", r.host)
	}
	return nil
}

// lookup resolves the host. A discovered host goes through discovery's
// guard, which refuses non-public addresses unless allowed: a domain's DNS
// must not make check probe the local network. A host given with --server
// is the user's own choice.
func (r *runner) lookup(ctx context.Context) ([]netip.Addr, error) {
	if r.report.Server.Source != SourceFlag {
		return r.discoverer().Guard().Vet(ctx, r.host)
	}
	if a, err := netip.ParseAddr(r.host); err == nil {
		return []netip.Addr{a}, nil
	}
	resolver := r.opts.Resolver
	if resolver == nil {
		resolver = net.DefaultResolver
	}
	return resolver.LookupNetIP(ctx, "ip", r.host)
}

// connect opens a TCP connection to the first address that answers.
func (r *runner) connect(ctx context.Context, s *Step) error {
	r.obs.Phase = diagnose.PhaseDial
	var errs []error
	for _, a := range r.addrs {
		addr := netip.AddrPortFrom(a, uint16(r.port)).String()
		conn, err := r.dial(ctx, addr, dialTimeout)
		if err == nil {
			r.raw = conn
			r.watch(ctx)
			r.up = upstream.NewClient(r.upstreamConfig(addr), &r.obs)
			r.up.Attach(conn)
			r.report.Server.Connected = addr
			s.Summary = r.t("connected to %s", addr)
			if len(errs) > 0 {
				s.Status = StatusWarning
			}
			return nil
		}
		errs = append(errs, err)
		s.Details = append(s.Details, addr+": "+connectFailure(err))
		if ctx.Err() != nil {
			break
		}
	}
	err := errors.Join(errs...)
	r.obs.NetError = diagnose.NetErrorOf(err)
	s.Summary = r.t("no connection to port %d: %s", r.port, r.t(connectFailure(err)))
	if r.obs.NetError == diagnose.NetOK {
		s.Diagnosis = r.unexplained(err)
	}
	return fmt.Errorf("connect: %w", err)
}

// connectFailure names a dial error's kind for people.
func connectFailure(err error) string {
	switch diagnose.NetErrorOf(err) {
	case diagnose.NetRefused:
		return "connection refused (nothing listens on that port)"
	case diagnose.NetTimeout:
		return "no answer (timed out; a firewall may drop the connection)"
	}
	return printable(err.Error(), maxShown)
}

// dial connects to one address within timeout (and ctx).
func (r *runner) dial(ctx context.Context, addr string, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if r.opts.Dial != nil {
		return r.opts.Dial(ctx, "tcp", addr)
	}
	var d net.Dialer
	return d.DialContext(ctx, "tcp", addr)
}

// handshake runs the TLS handshake: on the new connection (implicit TLS) or
// after STARTTLS. The certificate is checked against the host name, the
// system's roots and CAFile, as a mail app would; a failure stops the check
// before any password is sent, but what the certificate says is shown.
func (r *runner) handshake(ctx context.Context, s *Step) error {
	r.obs.Phase = diagnose.PhaseTLS
	ctx, cancel := context.WithTimeout(ctx, tlsTimeout)
	defer cancel()
	r.up.SetDeadline(time.Now().Add(tlsTimeout))
	if err := r.up.Handshake(ctx); err != nil {
		return r.handshakeFailed(s, err)
	}
	cs, _ := r.up.TLSState()
	info := r.certificateInfo(cs.PeerCertificates)
	info.Version = tls.VersionName(cs.Version)
	info.Cipher = tls.CipherSuiteName(cs.CipherSuite)
	info.Verified = true
	r.report.TLS = &info
	s.Summary = r.t("%s, certificate valid for %s", info.Version, r.host)
	s.Details = append(s.Details, info.details()...)
	return nil
}

// upstreamConfig is how the upstream client reaches the server: the
// address connected to (the TLS probe dials it again), the host's name
// for the certificate, the system's roots and CAFile.
func (r *runner) upstreamConfig(connected string) upstream.Config {
	u := config.Upstream{Address: net.JoinHostPort(r.host, strconv.Itoa(r.port)), TLS: r.mode, ServerName: r.host}
	dial := func(ctx context.Context, _, _ string) (net.Conn, error) { return r.dial(ctx, connected, dialTimeout) }
	return upstream.NewConfig(u, &tls.Config{RootCAs: r.opts.roots}, config.Timeouts{}, dial)
}

// handshakeFailed records a failed handshake: the connection fact and,
// when a certificate arrived, what it says.
func (r *runner) handshakeFailed(s *Step, err error) error {
	r.obs.NetError = diagnose.NetErrorOf(err)
	r.obs.NotIMAP = diagnose.NotIMAPOf(err)
	if r.obs.NetError == diagnose.NetOK {
		r.obs.NetError = diagnose.NetTLSOther // as the proxy: a handshake failure of no known kind
	}
	if cve, ok := errors.AsType[*tls.CertificateVerificationError](err); ok {
		info := r.certificateInfo(cve.UnverifiedCertificates)
		info.VerifyError = printable(cve.Err.Error(), maxShown)
		r.report.TLS = &info
		s.Details = append(s.Details, info.details()...)
	}
	s.Summary = r.handshakeFailure(r.obs.NetError, r.obs.NotIMAP, r.host)
	return fmt.Errorf("TLS handshake: %w", err)
}

// handshakeFailure says in one line what went wrong.
func (r *runner) handshakeFailure(n diagnose.NetError, notIMAP, host string) string {
	switch {
	case notIMAP != "":
		return r.t("%s answered in plaintext: this is not an IMAP port", r.protocolServer(notIMAP))
	case n == diagnose.NetTLSToPlain:
		return r.t("the server answered in plaintext: this port does not use SSL/TLS (STARTTLS, port 143?)")
	case n == diagnose.NetCertName:
		return r.t("the certificate is not valid for %s", host)
	case n == diagnose.NetCertExpired:
		return r.t("the certificate has expired (or is not valid yet)")
	case n == diagnose.NetCertUntrusted:
		return r.t("the certificate is not signed by a trusted authority (trust its CA with --ca-file)")
	case n == diagnose.NetTimeout:
		return r.t("no TLS answer in time")
	case n == diagnose.NetReset:
		return r.t("the server closed the connection during the handshake")
	}
	return r.t("the TLS handshake failed")
}

// protocolServer is "an SMTP server" for diagnose.SniffProtocol's "smtp".
func (r *runner) protocolServer(p string) string {
	switch p {
	case "smtp":
		return r.t("an SMTP server")
	case "other":
		return r.t("a server of another protocol")
	}
	return r.t("a %s server", protocolName(p))
}

// protocolName is "SMTP" for diagnose.SniffProtocol's "smtp".
func protocolName(p string) string {
	switch p {
	case "pop3":
		return "POP3"
	case "smtp":
		return "SMTP"
	case "http":
		return "web (HTTP)"
	}
	return "non-IMAP"
}

// certificateInfo describes the leaf of chain; NameMatches is checked on
// its own, so that an untrusted certificate still says whether its name is
// right.
func (r *runner) certificateInfo(chain []*x509.Certificate) TLSInfo {
	info := TLSInfo{ServerName: r.host, Names: []string{}}
	if len(chain) == 0 {
		return info
	}
	leaf := chain[0]
	info.Subject = leaf.Subject.String()
	info.Issuer = leaf.Issuer.String()
	info.NotAfter = leaf.NotAfter.UTC()
	info.Names = append(info.Names, leaf.DNSNames...)
	for _, ip := range leaf.IPAddresses {
		info.Names = append(info.Names, ip.String())
	}
	info.NameMatches = leaf.VerifyHostname(r.host) == nil
	return info
}

// details are the certificate's lines for people.
func (t TLSInfo) details() []string {
	lines := []string{
		"certificate: " + printable(t.Subject, maxShown),
		"names: " + printable(strings.Join(t.Names, ", "), maxShown),
		"issuer: " + printable(t.Issuer, maxShown),
		"valid until: " + t.NotAfter.Format("2006-01-02 15:04 MST"),
	}
	if t.Cipher != "" {
		lines = append(lines, "cipher: "+t.Cipher)
	}
	if t.VerifyError != "" {
		lines = append(lines, "verification: "+t.VerifyError)
	}
	return lines
}

// plaintext is the TLS step of TLS mode none: nothing to do but say so.
func (r *runner) plaintext(_ context.Context, s *Step) error {
	s.Status = StatusWarning
	s.Summary = r.t("off (--tls none): anything sent, the password too, crosses the network unencrypted")
	if !r.loopback() {
		s.Details = append(s.Details, r.t("the password will not be sent: the server is not on this machine"))
	}
	return nil
}

// loopback reports whether the connection goes to this machine.
func (r *runner) loopback() bool {
	ap, err := netip.ParseAddrPort(r.report.Server.Connected)
	return err == nil && ap.Addr().IsLoopback()
}
