package check

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/imapwhy/imapwhy/diagnose"
	"github.com/imapwhy/imapwhy/internal/config"
	"github.com/imapwhy/imapwhy/internal/discover"
)

// Step names, in the order they can run. The order depends on the TLS mode:
// implicit TLS handshakes before the greeting, STARTTLS after it.
const (
	StepDiscovery  = "discovery"  // which server: --server, or discover.Lookup
	StepDNS        = "dns"        // the server's addresses
	StepTCP        = "tcp"        // the TCP connection
	StepTLS        = "tls"        // the TLS handshake and the certificate
	StepGreeting   = "greeting"   // the server's first line: IMAP? which server?
	StepStartTLS   = "starttls"   // STARTTLS offered and accepted (TLS mode starttls)
	StepCapability = "capability" // login methods, LOGINDISABLED
	StepLogin      = "login"      // LOGIN or AUTHENTICATE PLAIN
	StepInbox      = "inbox"      // SELECT INBOX (read-only), message count
	StepLogout     = "logout"     // LOGOUT
)

// Status is how a step (or a checklist item) ended.
type Status string

const (
	StatusRunning Status = "running" // only in Progress, when a step starts
	StatusOK      Status = "ok"
	StatusWarning Status = "warning" // it worked, with something worth knowing
	StatusFailed  Status = "failed"
	StatusSkipped Status = "skipped" // not run (or not checked) after a failure
)

// Defaults and bounds. Each network wait is bounded by its own timeout and
// by Options.Timeout for the whole check.
const (
	defaultTimeout  = 60 * time.Second
	dnsTimeout      = 10 * time.Second
	dialTimeout     = 10 * time.Second // per address
	tlsTimeout      = 10 * time.Second
	greetingTimeout = 15 * time.Second
	commandTimeout  = 30 * time.Second // one IMAP command and its reply
)

// SourceFlag is Server.Source when the server came from Options.Server.
const SourceFlag = "flag"

// Options configure a check. The zero value checks by discovery, with
// implicit TLS as discovery says, messages in English.
type Options struct {
	// Server is "HOST" or "HOST:PORT" (IPv6 in brackets); empty: find the
	// server for the address with discovery. With Server, the address may
	// be a bare user name.
	Server string
	// TLS is the mode for Server: config.TLSImplicit, config.TLSStartTLS,
	// or config.TLSNone (plaintext: the password is only ever sent to a
	// loopback address). Empty: implicit, or starttls when the port is 143.
	// It needs Server.
	TLS string
	// CAFile is a PEM file of CA certificates trusted in addition to the
	// system's roots.
	CAFile string
	// Lang is the language of diagnosis messages and the checklist: "ja"
	// or "en" (empty: "en").
	Lang string
	// OAuth says the secret is an OAuth 2.0 access token, not a password:
	// the login is AUTHENTICATE XOAUTH2 (or OAUTHBEARER), and the report
	// says what the token is for and when it expires (Report.Token).
	OAuth bool
	// Discover finds the server when Server is empty. nil: a Discoverer
	// with the built-in provider catalog, using Resolver.
	Discover *discover.Discoverer
	// Resolver looks up the server's addresses (the DNS step). nil:
	// net.DefaultResolver.
	Resolver *net.Resolver
	// Dial connects to one address ("ip:port") for the TCP step and the TLS
	// probe. nil: a net.Dialer. Tests use it to reach local servers.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Timeout bounds the whole check. 0 or less: 60s.
	Timeout time.Duration
	// Progress, if not nil, is called with each step when it starts
	// (Status StatusRunning) and when it ends; a skipped step is reported
	// once. Calls come from Run's goroutine, in order.
	Progress func(Step)
}

// Validate reports what is wrong with the options, naming the option: what
// a command line must reject before anything runs.
func (o Options) Validate() error {
	_, err := o.settle()
	return err
}

// settled are validated options, with defaults filled in.
type settled struct {
	Options
	host  string
	port  int
	mode  string // TLS mode for Server; "" with discovery
	roots *x509.CertPool
}

func (o Options) settle() (settled, error) {
	s := settled{Options: o}
	switch o.Lang {
	case "":
		s.Lang = "en"
	case "en", "ja":
	default:
		return s, fmt.Errorf("lang %q: want ja or en", o.Lang)
	}
	switch o.TLS {
	case "", config.TLSImplicit, config.TLSStartTLS, config.TLSNone:
	default:
		return s, fmt.Errorf("tls %q: want implicit, starttls or none", o.TLS)
	}
	if o.Server == "" && o.TLS != "" {
		return s, errors.New("tls needs server: the TLS mode of a discovered server comes from discovery")
	}
	if o.Server != "" {
		host, port, err := parseServer(o.Server)
		if err != nil {
			return s, err
		}
		s.host, s.port, s.mode = host, port, o.TLS
		if s.mode == "" {
			s.mode = config.TLSImplicit
			if port == 143 {
				s.mode = config.TLSStartTLS
			}
		}
		if s.port == 0 {
			s.port = defaultPort(s.mode)
		}
	}
	roots, err := loadRoots(o.CAFile)
	if err != nil {
		return s, err
	}
	s.roots = roots
	if s.Timeout <= 0 {
		s.Timeout = defaultTimeout
	}
	return s, nil
}

// parseServer accepts HOST, HOST:PORT, [IPv6] and [IPv6]:PORT; port 0
// means "the usual one for the TLS mode".
func parseServer(server string) (host string, port int, err error) {
	host, portText, splitErr := net.SplitHostPort(server)
	if splitErr != nil {
		// No port: a name, an IPv4 address, or an IPv6 address with or
		// without brackets.
		host = strings.TrimSuffix(strings.TrimPrefix(server, "["), "]")
	} else if port, err = strconv.Atoi(portText); err != nil || port < 1 || port > 65535 {
		return "", 0, fmt.Errorf("server %q: the port must be a number from 1 to 65535", server)
	}
	if host == "" || strings.ContainsAny(host, " \t/@") {
		return "", 0, fmt.Errorf("server %q: want HOST or HOST:PORT", server)
	}
	return host, port, nil
}

// defaultPort is the usual IMAP port for a TLS mode (RFC 8314: 993 for
// implicit TLS; 143 for STARTTLS and plaintext).
func defaultPort(mode string) int {
	if mode == config.TLSImplicit {
		return 993
	}
	return 143
}

// loadRoots returns the system's roots plus the certificates in caFile.
func loadRoots(caFile string) (*x509.CertPool, error) {
	roots, err := x509.SystemCertPool()
	if err != nil {
		roots = x509.NewCertPool() // no system roots: only caFile is trusted
	}
	if caFile == "" {
		return roots, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("ca-file: %w", err)
	}
	if !roots.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("ca-file %s: no PEM certificate in it", caFile)
	}
	return roots, nil
}

// Report is the outcome of a check. It never holds the password.
type Report struct {
	Address   string          `json:"address"` // as given
	User      string          `json:"user"`    // the login name used ("" before discovery found one)
	Lang      string          `json:"lang"`
	Server    Server          `json:"server"`
	TLS       *TLSInfo        `json:"tls,omitempty"` // nil when no handshake got as far as a certificate
	IMAP      IMAPInfo        `json:"imap"`
	Steps     []Step          `json:"steps"`
	Checklist []ChecklistItem `json:"checklist"`
	// OK is true when the login and INBOX worked.
	OK bool `json:"ok"`
	// Diagnosis is the failed step's, nil when no step failed.
	Diagnosis *Diagnosis `json:"diagnosis,omitempty"`
	// Error says why nothing ran (invalid Options); "" otherwise.
	Error string `json:"error,omitempty"`
	// Token is what the token says about itself, with Options.OAuth.
	Token *TokenInfo `json:"token,omitempty"`
}

// Server is where the check went.
type Server struct {
	Host      string   `json:"host"`
	Port      int      `json:"port"`
	TLS       string   `json:"tls"`              // implicit, starttls or none
	Source    string   `json:"source"`           // SourceFlag, or a discover.Source* value
	Detail    string   `json:"detail,omitempty"` // where discovery found it (autoconfig URL, SRV name...)
	Provider  string   `json:"provider,omitempty"`
	Addresses []string `json:"addresses,omitempty"` // from DNS
	Connected string   `json:"connected,omitempty"` // the address the TCP connection reached
}

// TLSInfo is the TLS session and the server's certificate.
type TLSInfo struct {
	Version     string    `json:"version,omitempty"` // "TLS 1.3"; "" when the handshake failed
	Cipher      string    `json:"cipher,omitempty"`
	ServerName  string    `json:"server_name"` // the name the certificate was checked against
	Subject     string    `json:"subject"`
	Names       []string  `json:"names"` // DNS and IP subject alternative names
	Issuer      string    `json:"issuer"`
	NotAfter    time.Time `json:"not_after"`
	NameMatches bool      `json:"name_matches"`
	Verified    bool      `json:"verified"`               // chain, dates and name, with the system's roots and CAFile
	VerifyError string    `json:"verify_error,omitempty"` // why not
}

// IMAPInfo is what the IMAP server said about itself and the mailbox.
type IMAPInfo struct {
	Greeting      string   `json:"greeting,omitempty"`
	Software      string   `json:"software,omitempty"` // provider or server software recognised, display name
	SoftwareID    string   `json:"software_id,omitempty"`
	Capabilities  []string `json:"capabilities,omitempty"` // the last list seen (after TLS when there was TLS), upper case
	LoginDisabled bool     `json:"login_disabled"`
	StartTLS      bool     `json:"starttls"`            // offered on the plaintext connection
	Mechanism     string   `json:"mechanism,omitempty"` // what the login used: "PLAIN" or "LOGIN"
	Messages      *uint32  `json:"inbox_messages,omitempty"`
}

// Step is one step of the check.
type Step struct {
	Name     string        `json:"name"` // Step* constant
	Status   Status        `json:"status"`
	Duration time.Duration `json:"-"`       // see MarshalJSON: duration_ms
	Summary  string        `json:"summary"` // one line for people, English
	Details  []string      `json:"details"` // more lines for people, English
	// Error is the Go error of a failed step, for people debugging; the
	// diagnosis is what to act on.
	Error     string     `json:"error,omitempty"`
	Diagnosis *Diagnosis `json:"diagnosis,omitempty"`
}

// MarshalJSON adds duration_ms, the duration in milliseconds.
func (s Step) MarshalJSON() ([]byte, error) {
	type plain Step // without this method
	return json.Marshal(struct {
		plain
		DurationMS float64 `json:"duration_ms"`
	}{plain(s), float64(s.Duration.Microseconds()) / 1000})
}

// Diagnosis is why a step failed: diagnose's verdict, and its message in
// the report's language (what is wrong and the one thing to do).
type Diagnosis struct {
	Cause        diagnose.Cause      `json:"cause"`
	Code         string              `json:"code"` // RFC 5530
	Confidence   diagnose.Confidence `json:"confidence"`
	Temporary    bool                `json:"temporary"`
	Provider     string              `json:"provider,omitempty"`
	ProviderName string              `json:"provider_name,omitempty"`
	Alternative  diagnose.Cause      `json:"alternative,omitempty"`
	HelpURL      string              `json:"help_url,omitempty"`
	Message      string              `json:"message"`
	Detail       string              `json:"detail,omitempty"` // may quote the server
}

// ChecklistItem answers one question of the support checklist.
type ChecklistItem struct {
	ID       string `json:"id"`       // Item* constant
	Question string `json:"question"` // in the report's language
	Status   Status `json:"status"`   // ok, warning, failed, or skipped (could not be checked)
	Answer   string `json:"answer"`   // in the report's language
}

// Run checks address (an email address, or with Options.Server any user
// name) with password, and reports every step. It returns when the check
// is done, ctx ends, or Options.Timeout passes; every connection it opened
// is closed by then. Invalid options give a Report with Error set and no
// steps.
func Run(ctx context.Context, address, password string, opts Options) Report {
	s, err := opts.settle()
	if err != nil {
		return Report{Address: address, Lang: opts.Lang, Steps: []Step{}, Checklist: []ChecklistItem{}, Error: err.Error()}
	}
	ctx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	r := newRunner(s, address, password)
	defer r.close()
	r.run(ctx)
	return r.finish()
}
