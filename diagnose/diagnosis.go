package diagnose

// Cause is a stable diagnosis ID (see README.md).
type Cause string

// Confidence of a diagnosis.
type Confidence string

const (
	High   Confidence = "high"   // an explicit code or provider text says so
	Medium Confidence = "medium" // provider fingerprint plus facts make it likely
	Low    Confidence = "low"    // a guess; the message says so
)

// Diagnosis is the result of Classify.
type Diagnosis struct {
	Cause        Cause
	Code         string // RFC 5530 code to send to the client, without brackets ("AUTHENTICATIONFAILED")
	Confidence   Confidence
	Temporary    bool
	Provider     string // provider ID from the catalog ("gmail"), "" if unknown
	ProviderName string // display name ("Gmail")
	HelpURL      string // the provider's own help page for the fix, "" if none
	Alternative  Cause  // a second cause that also fits, "" if none
	Detail       string // for logs and --json only (never contains the password); may quote the upstream's text
	// Held: the proxy did not send this password upstream again (the
	// shield); Cause is what the server's last refusal of it meant.
	Held bool
	// Proxied: the login came through the proxy (Observation.Proxied), or
	// the server was an imapwhy that reported its diagnosis, so the server,
	// port and TLS that failed are imapwhy's upstream setting, not the mail
	// app's; Message words upstream and network causes so.
	Proxied bool
}
