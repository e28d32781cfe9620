package diagnose

// Phase names the step of an upstream login in which something went wrong
// (or the last step reached).
type Phase string

const (
	PhaseDial       Phase = "dial"        // DNS and TCP connect
	PhaseTLS        Phase = "tls"         // TLS handshake (implicit TLS or after STARTTLS)
	PhaseGreeting   Phase = "greeting"    // reading the server's first line
	PhaseCapability Phase = "capability"  // CAPABILITY before login
	PhaseStartTLS   Phase = "starttls"    // the STARTTLS command itself
	PhaseLogin      Phase = "login"       // LOGIN / AUTHENTICATE and the reply to it
	PhaseAfterLogin Phase = "after_login" // login said OK, then the server failed (BYE ...)
	PhaseProxy      Phase = "proxy"       // the proxy refused on its own (no upstream attempt)
)

// NetError is a typed fact about a connection failure, derived by the proxy
// from typed Go errors (net.DNSError, syscall.ECONNREFUSED, x509 errors...),
// never from error strings.
type NetError string

const (
	NetOK             NetError = ""
	NetDNSNotFound    NetError = "dns_not_found"   // the host name does not exist (NXDOMAIN)
	NetDNSUnavailable NetError = "dns_unavailable" // DNS gave no answer: SERVFAIL, timeout, no resolver or no network
	NetUnreachable    NetError = "unreachable"     // no route to the host or its network (EHOSTUNREACH, ENETUNREACH)
	NetRefused        NetError = "refused"         // connection refused
	NetTimeout        NetError = "timeout"         // no answer in time (dial, TLS or a read)
	NetReset          NetError = "reset"           // closed or reset by the server mid-exchange
	NetTLSToPlain     NetError = "tls_to_plain"    // we spoke TLS, the server answered in plaintext (e.g. "* OK" to a ClientHello)
	NetPlainToTLS     NetError = "plain_to_tls"    // we spoke plaintext/waited for a greeting, the port speaks TLS
	NetCertName       NetError = "cert_name"       // certificate is for another name
	NetCertExpired    NetError = "cert_expired"    // certificate expired or not yet valid
	NetCertUntrusted  NetError = "cert_untrusted"  // unknown authority / self-signed
	NetTLSOther       NetError = "tls_other"       // any other handshake failure (protocol version, alert...)
	NetProtocol       NetError = "protocol"        // the server broke IMAP (garbage, over-long line)
	// NetLocal: this computer could not open or use the connection for
	// want of its own resources (EMFILE, ENFILE, ENOBUFS, ENOMEM,
	// EADDRNOTAVAIL: out of file descriptors, buffers, memory or
	// ephemeral ports). The server was not asked.
	NetLocal NetError = "local"
	// NetOther: the connection failed in a way nothing above recognises.
	// It says nothing about the credentials.
	NetOther NetError = "other"
)

// Response is one IMAP status response as seen on the wire.
type Response struct {
	Tagged  bool   // false for "* ..." lines
	Status  string // "OK", "NO", "BAD", "BYE", "PREAUTH" (upper case)
	Code    string // response code name without brackets, upper case ("AUTHENTICATIONFAILED", "ALERT", "WEBALERT"...); "" if none
	CodeArg string // the rest inside the brackets after the code name ("https://..." for WEBALERT), "" if none
	Text    string // human-readable text after the code
	// FromApp: a pasted line with no status and no wrapper around the
	// server's words, such as "The user name or password for
	// imap.gmail.com is incorrect.": a mail app's own text, taken as the
	// refusal (a NO) though the server never said it so.
	FromApp bool
}

// Typed holds facts about what the user typed. It never holds the password.
// The proxy computes it with Facts(username, password) and then forgets the password.
type Typed struct {
	Username                 string // the user name as typed (it is logged anyway)
	UserHasDomain            bool   // contains '@' with something after it
	UserSurroundingSpace     bool
	UserFullwidth            bool
	PasswordEmpty            bool
	PasswordSurroundingSpace bool     // leading or trailing space, tab, CR or LF
	PasswordFullwidth        bool     // U+FF01..U+FF5E or U+3000 present
	PasswordNonASCII         bool     // other non-ASCII characters present
	PasswordLength           int      // in characters
	AppPasswordShapes        []string // provider IDs whose app-password form this password matches
}

// History holds facts from the failure-history store (internal/shield). All zero
// when no history is kept.
type History struct {
	Known              bool   // history exists for this user
	SamePasswordWorked bool   // this exact password logged in before (and fails now)
	CaseInvertedWorked bool   // the case-inverted password is the last one that worked
	TrimmedWorked      bool   // the password without surrounding space is the last one that worked
	FoldedWorked       bool   // the password folded from full-width is the last one that worked
	RepeatedFailures   int    // how many times this same failing password was seen in the window
	Held               bool   // the proxy did not forward this attempt (shield)
	HeldCause          string // the cause diagnosed when the password was last forwarded
	// Stranger: the client's network never logged in as this user, so
	// what the history knows is not said to it (the other facts are
	// zero); a held attempt is then an ordinary refusal.
	Stranger bool
}

// Observation is everything seen during one login attempt, reduced to facts.
// The proxy (and `imapwhy explain`, from a transcript) fills it; Classify reads it.
type Observation struct {
	// The upstream as configured or discovered.
	Host       string // host name used to reach the server ("imap.gmail.com"), may be an IP
	Port       int
	TLSMode    string // "implicit", "starttls" or "none"
	ServerName string // TLS / fingerprint name, if different from Host
	// Proxied: a mail app logged in through the proxy, which chose the
	// upstream (its listener's setting, a route or discovery): the mail
	// app's own settings are not the ones above. The proxy sets it;
	// `imapwhy check` and explain, where the person typed the server, do not.
	Proxied bool

	Phase    Phase    // last phase reached; where the failure happened
	NetError NetError // connection-level failure, NetOK if none
	NotIMAP  string   // "pop3", "smtp", "http" or "other" when another protocol answered; "" otherwise

	Greeting        string   // the greeting line as received, without CRLF
	Capabilities    []string // capabilities before login (from greeting code or CAPABILITY), upper case
	StartTLSOffered bool     // STARTTLS was in the capabilities (plain connection)

	Mechanism string     // what the proxy used upstream: "LOGIN", "PLAIN", or "" if it could not log in
	Untagged  []Response // untagged responses received in the login phase, in order
	Reply     *Response  // the tagged reply (or the BYE) that ended the login; nil if none arrived

	Typed   Typed
	History History
	// OAuth is set for an XOAUTH2 or OAUTHBEARER login, nil otherwise.
	OAuth *OAuth
	// Grant is set when the OAuth bridge could not get an access token
	// for a password login (the provider's token endpoint refused the
	// stored grant or did not answer); nothing was sent to the server.
	Grant *GrantFailure

	// LoginSucceeded: the transcript shows the login answered OK and
	// nothing failing after it (ParseTranscript sets it). There is no
	// failure to explain; Classify is not meant for it.
	LoginSucceeded bool
}
