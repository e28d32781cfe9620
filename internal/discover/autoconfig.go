package discover

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/imapwhy/imapwhy/internal/config"
)

// Bounds on an autoconfig fetch. A real config file is a few KiB.
const (
	maxAutoconfigBody    = 256 << 10
	maxAutoconfigHeader  = 16 << 10
	maxAutoconfigRedirs  = 3
	autoconfigTLSTimeout = 5 * time.Second
)

var (
	errRedirectRefused = errors.New("redirect refused")
	errNoIMAPServer    = errors.New("no usable IMAP server in the file")
)

// DefaultAutoconfigURLs returns the two places Thunderbird's autoconfig
// looks on the domain's own servers, in order: the autoconfig host (with the
// address, as Thunderbird sends it) and the domain's well-known path.
func DefaultAutoconfigURLs(domain, email string) []string {
	return []string{
		"https://autoconfig." + domain + "/mail/config-v1.1.xml?emailaddress=" + url.QueryEscape(email),
		"https://" + domain + "/.well-known/autoconfig/mail/config-v1.1.xml",
	}
}

// newAutoconfigTransport returns the transport for autoconfig fetches. Every
// connection goes through the guard; no environment proxy is used (the
// guard would then vet the proxy, not the server); connections are not kept
// (fetches are rare, cached, and an idle pool would outlive its users).
func newAutoconfigTransport(g *Guard, roots *x509.CertPool) *http.Transport {
	return &http.Transport{
		Proxy:                  nil,
		DialContext:            g.DialContext,
		TLSClientConfig:        &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:    autoconfigTLSTimeout,
		DisableKeepAlives:      true,
		MaxResponseHeaderBytes: maxAutoconfigHeader,
	}
}

// autoconfig tries each autoconfig URL in turn and returns the first usable
// IMAP server.
func (d *Discoverer) autoconfig(ctx context.Context, a address) (Result, error) {
	r, errs, ok := firstWorking(ctx, d.autoconfigURLs(a.ascii, a.full), func(u string) (Result, error) {
		return d.fetchAutoconfig(ctx, u, a.ascii)
	})
	if ok {
		return r, nil
	}
	if len(errs) == 0 {
		return Result{}, errors.New("autoconfig: no URL to try")
	}
	return Result{}, errors.Join(errs...)
}

// fetchAutoconfig fetches one autoconfig file and picks its IMAP server.
func (d *Discoverer) fetchAutoconfig(ctx context.Context, rawURL, domain string) (Result, error) {
	where := withoutQuery(rawURL)
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return Result{}, fmt.Errorf("autoconfig %s: %w", where, err)
	}
	if req.URL.Scheme != "https" {
		return Result{}, fmt.Errorf("autoconfig %s: only https is fetched", where)
	}
	req.Header.Set("Accept", "application/xml, text/xml")
	client := &http.Client{Transport: d.transport, CheckRedirect: sameDomainRedirect(domain)}
	resp, err := client.Do(req)
	if err != nil {
		return Result{}, fmt.Errorf("autoconfig %s: %w", where, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return Result{}, fmt.Errorf("autoconfig %s: HTTP status %d", where, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAutoconfigBody+1))
	if err != nil {
		return Result{}, fmt.Errorf("autoconfig %s: %w", where, err)
	}
	if len(body) > maxAutoconfigBody {
		return Result{}, fmt.Errorf("autoconfig %s: larger than %d bytes", where, maxAutoconfigBody)
	}
	r, err := pickIMAPServer(body, domain, d.allowPlaintext)
	if err != nil {
		return Result{}, fmt.Errorf("autoconfig %s: %w", where, err)
	}
	r.Detail = "autoconfig " + where
	return r, nil
}

// sameDomainRedirect follows a redirect only to https on the domain itself
// or one of its subdomains, a few times at most. A redirect elsewhere would
// let whoever runs the web server choose the user's IMAP server from a
// third party's file.
func sameDomainRedirect(domain string) func(*http.Request, []*http.Request) error {
	return func(req *http.Request, via []*http.Request) error {
		host := strings.ToLower(strings.TrimSuffix(req.URL.Hostname(), "."))
		switch {
		case len(via) >= maxAutoconfigRedirs:
			return fmt.Errorf("%w: more than %d redirects", errRedirectRefused, maxAutoconfigRedirs)
		case req.URL.Scheme != "https":
			return fmt.Errorf("%w: to %s, not https", errRedirectRefused, req.URL.Scheme)
		case host != domain && !strings.HasSuffix(host, "."+domain):
			return fmt.Errorf("%w: to %s, outside %s", errRedirectRefused, host, domain)
		}
		return nil
	}
}

// withoutQuery drops the query (which carries the user's address) for
// error messages and Result.Detail.
func withoutQuery(rawURL string) string {
	if i := strings.IndexByte(rawURL, '?'); i >= 0 {
		return rawURL[:i]
	}
	return rawURL
}

// clientConfig is the part of Thunderbird's clientConfig format
// (config-v1.1.xml) that discovery reads.
type clientConfig struct {
	XMLName   xml.Name        `xml:"clientConfig"`
	Providers []emailProvider `xml:"emailProvider"`
}

type emailProvider struct {
	ID       string           `xml:"id,attr"`
	Incoming []incomingServer `xml:"incomingServer"`
}

type incomingServer struct {
	Type       string `xml:"type,attr"`
	Hostname   string `xml:"hostname"`
	Port       string `xml:"port"`
	SocketType string `xml:"socketType"`
	Username   string `xml:"username"`
}

// socketTypes maps the file's socketType to a TLS mode and a rank (lower is
// better): implicit TLS, then STARTTLS, then plaintext. Keys are upper case;
// the file's value is matched without regard to case ("plain").
var socketTypes = map[string]struct {
	tls  string
	rank int
}{
	"SSL":      {config.TLSImplicit, 0},
	"STARTTLS": {config.TLSStartTLS, 1},
	"PLAIN":    {config.TLSNone, 2},
}

// pickIMAPServer parses a config file and returns its best IMAP server:
// implicit TLS before STARTTLS, plaintext only when allowed, the file's own
// order between equals. Servers with a bad host name or port are skipped.
// encoding/xml expands no external entities and reads no DTD, so the file
// cannot make the parser fetch anything or grow beyond the body bound.
func pickIMAPServer(body []byte, domain string, allowPlaintext bool) (Result, error) {
	var cc clientConfig
	if err := xml.Unmarshal(body, &cc); err != nil {
		return Result{}, fmt.Errorf("not a clientConfig file: %w", err)
	}
	best, bestRank := Result{}, -1
	for _, p := range cc.Providers {
		for _, s := range p.Incoming {
			r, rank, ok := imapServer(s, domain, allowPlaintext)
			if ok && (bestRank < 0 || rank < bestRank) {
				best, bestRank = r, rank
			}
		}
	}
	if bestRank < 0 {
		return Result{}, errNoIMAPServer
	}
	return best, nil
}

// imapServer converts one incomingServer element, if it is a usable IMAP
// server. %EMAILDOMAIN% is allowed in the host name, as Thunderbird allows it.
func imapServer(s incomingServer, domain string, allowPlaintext bool) (Result, int, bool) {
	if !strings.EqualFold(strings.TrimSpace(s.Type), "imap") {
		return Result{}, 0, false
	}
	st, ok := socketTypes[strings.ToUpper(strings.TrimSpace(s.SocketType))]
	if !ok || (st.tls == config.TLSNone && !allowPlaintext) {
		return Result{}, 0, false
	}
	host := strings.ToLower(strings.TrimSuffix(strings.ReplaceAll(strings.TrimSpace(s.Hostname), placeholderDomain, domain), "."))
	port, err := strconv.Atoi(strings.TrimSpace(s.Port))
	if !validHostname(host) || err != nil || port < 1 || port > 65535 {
		return Result{}, 0, false
	}
	return Result{
		Host: host, Port: port, TLS: st.tls, Username: strings.TrimSpace(s.Username), Source: SourceAutoconfig,
	}, st.rank, true
}

// ParseAutoconfig reads a clientConfig file (config-v1.1.xml) the way
// discovery reads a fetched one and returns its best IMAP server for the
// domain (lower-case ASCII); plaintext servers only when allowPlaintext.
func ParseAutoconfig(body []byte, domain string, allowPlaintext bool) (Result, error) {
	if len(body) > maxAutoconfigBody {
		return Result{}, fmt.Errorf("larger than %d bytes", maxAutoconfigBody)
	}
	return pickIMAPServer(body, domain, allowPlaintext)
}
