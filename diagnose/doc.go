// Package diagnose works out why an IMAP login failed and says so in words
// a person who is not technical understands.
//
// It is pure: no network, clock or logging. The proxy records what it saw
// during a failed login in an Observation (connection errors, greeting,
// capabilities, every untagged line, the tagged reply) together with facts
// about what the user typed (Facts, computed before the password is
// forgotten) and history; Classify turns that into a Diagnosis (a stable
// cause ID, the RFC 5530 code to answer with, confidence, a second cause
// that also fits), and Message renders it in Japanese or English:
//
//	obs := diagnose.Observation{
//		Host:      "imap.gmail.com",
//		Mechanism: "LOGIN",
//		Reply:     &diagnose.Response{Tagged: true, Status: "NO", Code: "AUTHENTICATIONFAILED", Text: "Invalid credentials (Failure)"},
//		Typed:     diagnose.Facts(user, password),
//	}
//	d := diagnose.Classify(obs)
//	text := diagnose.Message(d, "ja")
//	// reply: * OK [ALERT] text, then tag NO [d.Code] text
//
// The provider catalog (providers.yaml) and the message catalogs
// (messages/*.yaml) are embedded data, checked when the package starts.
// ParseTranscript builds an Observation from a pasted transcript, for the
// `imapwhy explain` command.
package diagnose
