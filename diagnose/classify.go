package diagnose

import "strings"

// verdict is a cause, how sure Classify is of it, and a second cause that
// also fits.
type verdict struct {
	cause       Cause
	confidence  Confidence
	alternative Cause
}

var fallback = verdict{cause: CauseCredentialsRejected, confidence: Low}

// Classify works out why a login failed. It is pure: no network, clock or
// logging, and it never sees a password (Typed holds facts only).
//
// Evidence is layered, strongest first:
//  1. connection facts (NetError, NotIMAP, Phase);
//  2. the RFC 5530 code of the tagged reply, then of the untagged lines;
//  3. the known texts of the provider and server software recognised from
//     the host name, greeting and capabilities, then loose phrase matching
//     for any server (ALERT, WEBALERT and plain texts alike);
//  4. for a refusal that says nothing more (AUTHENTICATIONFAILED or no
//     code): a provider that takes no passwords at all; then history (what
//     worked before); then what was typed; then what such a refusal usually
//     means at that provider (Gmail wants app passwords).
//
// Typed facts and history never override an explicit code or text. When
// nothing fits, the result is credentials.rejected with Low confidence,
// except for a connection that failed before any reply: nothing judged the
// credentials, so it is server.temporary_failure with Low confidence.
func Classify(o Observation) Diagnosis {
	if r, ok := reported(&o); ok {
		// imapwhy on the other end said what it diagnosed: that is the
		// answer, not a second guess from its prose. A server it could
		// not reach is its upstream, not the one o names.
		d := r.Diagnosis
		d.Proxied = true
		return d
	}
	ev := newEvidence(&o)
	d := ev.diagnosis(ev.decide())
	d.Proxied = o.Proxied
	return d
}

// evidence is an Observation prepared for classification.
type evidence struct {
	o     *Observation
	rec   recognition
	reply *Response // the reply that ended the login (a BYE when no tagged reply came), upper-cased
	texts []string  // server texts worth reading, the reply's first
	// greetingRefusal: the server refused the connection in its greeting
	// ("* NO", "* BYE"), before any login.
	greetingRefusal bool
}

func newEvidence(o *Observation) *evidence {
	ev := &evidence{o: o, rec: catalogData.recognise(o)}
	byeIndex := -1
	switch {
	case o.Reply != nil:
		ev.reply = normalised(*o.Reply)
	case lastBye(o.Untagged) >= 0:
		byeIndex = lastBye(o.Untagged)
		ev.reply = normalised(o.Untagged[byeIndex])
	case hasPrefixFold(o.Greeting, "* BYE") || hasPrefixFold(o.Greeting, "* NO"):
		if r, ok := parseResponse(o.Greeting); ok {
			ev.reply = normalised(r)
			ev.greetingRefusal = true
		}
	}
	if ev.reply != nil && !ev.reply.Tagged && len(o.Untagged) > 0 && o.Mechanism == "" &&
		hasPrefixFold(o.Greeting, "* "+ev.reply.Status) && o.Untagged[0].Status == ev.reply.Status {
		// The BYE that ended it all was the greeting itself.
		ev.greetingRefusal = true
	}
	if ev.reply != nil && ev.reply.Text != "" {
		ev.texts = append(ev.texts, ev.reply.Text)
	}
	for i, r := range o.Untagged {
		if i == byeIndex || r.Text == "" {
			continue
		}
		switch strings.ToUpper(r.Status) {
		case "NO", "BAD", "BYE":
		default:
			if code := strings.ToUpper(r.Code); code != "ALERT" && code != "WEBALERT" {
				continue
			}
		}
		ev.texts = append(ev.texts, r.Text)
	}
	return ev
}

// normalised copies r with status and code in upper case.
func normalised(r Response) *Response {
	r.Status = strings.ToUpper(r.Status)
	r.Code = strings.ToUpper(r.Code)
	return &r
}

func lastBye(rs []Response) int {
	for i := len(rs) - 1; i >= 0; i-- {
		if strings.EqualFold(rs[i].Status, "BYE") {
			return i
		}
	}
	return -1
}

// decide runs the layers in order.
func (ev *evidence) decide() verdict {
	if ev.o.History.Held && ev.o.History.Stranger {
		return verdict{cause: CauseCredentialsRejected, confidence: Low}
	}
	if ev.o.History.Held {
		return ev.held()
	}
	if ev.o.Grant != nil {
		return ev.o.Grant.verdict()
	}
	if v, ok := ev.connection(); ok {
		return v
	}
	if ev.o.Phase == PhaseProxy {
		return ev.proxyRefusal()
	}
	if ev.reply == nil {
		return ev.noReply()
	}
	if v, ok := ev.oauth(); ok {
		return v
	}
	if v, ok := ev.codes(); ok {
		return v
	}
	if v, ok := ev.providerTexts(); ok {
		return v
	}
	if v, ok := ev.phrases(); ok {
		return ev.looseText(v)
	}
	if ev.greetingRefusal {
		// Refused before any password was sent: the server will not serve
		// this connection (a blocked network, or a passing overload).
		return verdict{cause: CausePolicyAddressBlocked, confidence: Low, alternative: CauseServerTemporaryFailure}
	}
	if ev.o.Phase == PhaseAfterLogin {
		return ev.afterLogin()
	}
	return ev.refusal()
}

// looseText weighs a loose phrase match against what was typed: a vague
// "server error" does not outweigh a password that was certainly wrong
// (an empty one).
func (ev *evidence) looseText(v verdict) verdict {
	if v.cause != CauseServerTemporaryFailure || ev.o.Phase == PhaseAfterLogin || ev.greetingRefusal {
		return v
	}
	if f, ok := ev.typedFault(); ok && f.confidence == High {
		f.alternative = v.cause
		return f
	}
	return v
}

// held: the proxy did not forward this attempt (this same password was
// refused before). The answer is the diagnosis the server's last refusal
// of it got (Gmail wanting an app password stays that, although the
// password may be right); Diagnosis.Held makes the message add that
// imapwhy did not send it again. Only when that refusal said nothing more
// than "wrong" is the answer that the same wrong password keeps coming.
func (ev *evidence) held() verdict {
	c := Cause(ev.o.History.HeldCause)
	if !c.Valid() || c == CauseCredentialsRepeatedFailure || c == CauseCredentialsRejected {
		return verdict{cause: CauseCredentialsRepeatedFailure, confidence: High}
	}
	// Not seen this time, only remembered: at most Medium.
	return verdict{cause: c, confidence: Medium}
}

// connection: the server was not reached, or not as IMAP.
func (ev *evidence) connection() (verdict, bool) {
	o := ev.o
	if o.NotIMAP != "" {
		return verdict{cause: CauseUpstreamNotIMAP, confidence: High}, true
	}
	if cause, ok := netCauses[o.NetError]; ok {
		return verdict{cause: cause, confidence: High}, true
	}
	switch o.NetError {
	case NetOK:
	case NetTLSOther:
		// A handshake failure that is neither a plain/TLS mix-up nor a
		// certificate: most often a port/security mismatch, but an old TLS
		// version on either side looks the same.
		return verdict{cause: CauseUpstreamTLSMismatch, confidence: Low}, true
	case NetProtocol:
		return verdict{cause: CauseUpstreamNotIMAP, confidence: Low}, true
	case NetReset:
		if v, ok := ev.reset(); ok {
			return v, true
		}
	default:
		// NetLocal (this computer out of file descriptors, memory or
		// ports), NetOther (a failure of no known kind): the login did
		// not get through, which says nothing about the credentials.
		return verdict{cause: CauseServerTemporaryFailure, confidence: Low}, true
	}
	if o.TLSMode == "starttls" && !o.StartTLSOffered && len(o.Capabilities) > 0 &&
		(o.Phase == PhaseCapability || o.Phase == PhaseStartTLS) {
		return verdict{cause: CauseUpstreamStartTLSUnavailable, confidence: High}, true
	}
	if o.Phase == PhaseStartTLS && ev.reply != nil && (ev.reply.Status == "NO" || ev.reply.Status == "BAD") {
		return verdict{cause: CauseUpstreamStartTLSUnavailable, confidence: High}, true
	}
	return verdict{}, false
}

// netCauses are the network errors that name their cause for certain.
var netCauses = map[NetError]Cause{
	NetDNSNotFound:    CauseUpstreamDNSNotFound,
	NetDNSUnavailable: CauseNetworkDNSUnavailable,
	NetUnreachable:    CauseNetworkUnreachable,
	NetRefused:        CauseUpstreamRefused,
	NetTimeout:        CauseUpstreamTimeout,
	NetTLSToPlain:     CauseUpstreamTLSMismatch,
	NetPlainToTLS:     CauseUpstreamTLSMismatch,
	NetCertName:       CauseUpstreamCertificateName,
	NetCertExpired:    CauseUpstreamCertificateExpired,
	NetCertUntrusted:  CauseUpstreamCertificateUntrusted,
}

// reset: the server closed the connection. Where a reply came first, the
// reply explains it.
func (ev *evidence) reset() (verdict, bool) {
	switch {
	case ev.reply != nil:
		return verdict{}, false
	case ev.o.Phase == PhaseDial:
		return verdict{cause: CauseUpstreamRefused, confidence: Medium}, true
	case ev.o.Phase == PhaseTLS || ev.o.Phase == PhaseStartTLS:
		return verdict{cause: CauseUpstreamTLSMismatch, confidence: Low}, true
	}
	return verdict{cause: CauseServerTemporaryFailure, confidence: Low}, true
}

// proxyRefusal: the proxy refused on its own, before any upstream attempt.
// The proxy usually knows its cause and uses Of; this maps what it recorded.
func (ev *evidence) proxyRefusal() verdict {
	if r := ev.reply; r != nil {
		switch strings.ToUpper(r.Code) {
		case codePrivacyRequired:
			return verdict{cause: CauseClientPlaintextRefused, confidence: High}
		case codeLimit:
			return verdict{cause: CauseClientTooManyConnections, confidence: High}
		case codeCannot:
			return verdict{cause: CauseClientUnsupportedMechanism, confidence: High}
		}
		if v, ok := ev.phrases(); ok {
			if c, own := proxyOwnCause[v.cause]; own {
				v.cause = c
			}
			v.confidence = High // the proxy's own words
			return v
		}
		if r.Code == codeUnavailable {
			// The proxy cannot serve now (shutting down, overloaded).
			return verdict{cause: CauseServerTemporaryFailure, confidence: High}
		}
	}
	t := ev.o.Typed
	if !ValidUsername(t.Username) {
		// Refused before anything was sent: no user name is like that.
		return verdict{cause: CauseClientInvalidUsername, confidence: High}
	}
	if t.Username != "" && !t.UserHasDomain {
		// Routing by email domain needs the domain.
		return verdict{cause: CauseUsernameMissingDomain, confidence: High}
	}
	if ev.o.Host == "" && t.UserHasDomain {
		return verdict{cause: CauseClientUnknownDomain, confidence: Medium, alternative: CauseServerTemporaryFailure}
	}
	return verdict{cause: CauseServerTemporaryFailure, confidence: Low}
}

// proxyOwnCause maps what a refusal text says to the proxy's own cause.
var proxyOwnCause = map[Cause]Cause{
	CauseAccountLocked:             CauseClientRateLimited,
	CauseAccountTooManyConnections: CauseClientTooManyConnections,
	CauseServerPrivacyRequired:     CauseClientPlaintextRefused,
	CauseServerNoUsableMechanism:   CauseClientUnsupportedMechanism,
}

// noReply: no reply and no connection error. Either the connection failed
// before the server said anything (in a way no fact names), the proxy found
// no way to log in in the capabilities, or the server went quiet after
// login.
func (ev *evidence) noReply() verdict {
	o := ev.o
	if o.Phase == PhaseAfterLogin {
		return verdict{cause: CauseServerTemporaryFailure, confidence: Low}
	}
	if (o.Phase == PhaseDial || o.Phase == PhaseTLS) && o.Greeting == "" && o.Mechanism == "" {
		// The connection failed before the server said anything, in a
		// way no connection fact names: nothing judged the credentials.
		return verdict{cause: CauseServerTemporaryFailure, confidence: Low}
	}
	caps := o.Capabilities
	if o.Mechanism != "" || len(caps) == 0 || hasCap(caps, "AUTH=PLAIN") {
		return fallback
	}
	switch {
	case oauthOnly(caps):
		return verdict{cause: CauseProviderOAuthRequired, confidence: High}
	case !hasCap(caps, "LOGINDISABLED"):
		return fallback
	case o.TLSMode == "none" || (o.TLSMode == "starttls" && o.Phase == PhaseCapability):
		return verdict{cause: CauseServerPrivacyRequired, confidence: High}
	}
	return verdict{cause: CauseServerNoUsableMechanism, confidence: High}
}

// codes reads the RFC 5530 codes of the reply, then of the untagged lines.
func (ev *evidence) codes() (verdict, bool) {
	if v, ok := ev.codeVerdict(ev.reply); ok {
		return v, true
	}
	for i := range ev.o.Untagged {
		if v, ok := ev.codeVerdict(&ev.o.Untagged[i]); ok {
			return v, true
		}
	}
	return verdict{}, false
}

// codeVerdict maps one response's code. AUTHENTICATIONFAILED and ALERT say
// nothing about the cause; the text and the provider do. Where a code
// covers several causes (UNAVAILABLE, LIMIT, OVERQUOTA), the text picks.
func (ev *evidence) codeVerdict(r *Response) (verdict, bool) {
	code := strings.ToUpper(r.Code)
	if v, ok := codeVerdicts[code]; ok {
		return v, true
	}
	switch code {
	case codeAuthorizationFailed:
		if ev.o.Phase == PhaseLogin && strings.EqualFold(ev.o.Mechanism, "LOGIN") {
			// LOGIN names no other identity to act as: servers that answer
			// it with AUTHORIZATIONFAILED often mean the credentials.
			return verdict{cause: CauseAuthorizationFailed, confidence: Medium, alternative: CauseCredentialsRejected}, true
		}
		return verdict{cause: CauseAuthorizationFailed, confidence: High}, true
	case codeUnavailable, codeLimit, "OVERQUOTA":
		return refineByText(code, r.Text), true
	}
	return verdict{}, false
}

// codeVerdicts are the response codes that name one cause, whatever the
// text and the phase.
var codeVerdicts = map[string]verdict{
	"WEBALERT":          {cause: CauseProviderWebLoginRequired, confidence: High},
	codeExpired:         {cause: CauseAccountPasswordExpired, confidence: High},
	codePrivacyRequired: {cause: CauseServerPrivacyRequired, confidence: High},
	codeContactAdmin:    {cause: CauseAccountDisabled, confidence: High},
	"REFERRAL":          {cause: CauseServerReferral, confidence: High},
	"INUSE":             {cause: CauseServerTemporaryFailure, confidence: Medium},
	"SERVERBUG":         {cause: CauseServerTemporaryFailure, confidence: Medium},
	"NOPERM":            {cause: CauseAuthorizationFailed, confidence: Medium},
}

// refineByText picks among the causes a temporary code covers.
func refineByText(code, text string) verdict {
	phrase, ok := matchPhrase(text)
	if ok && (phrase.cause == CauseAccountLocked || phrase.cause == CauseAccountTooManyConnections) {
		if phrase.alternative == "" {
			phrase.confidence = High // the code bears the text out
		}
		return phrase
	}
	switch code {
	case codeUnavailable:
		return verdict{cause: CauseServerTemporaryFailure, confidence: High}
	case codeLimit:
		return verdict{cause: CauseAccountTooManyConnections, confidence: Medium}
	}
	// Gmail uses OVERQUOTA for its bandwidth and command limits.
	return verdict{cause: CauseAccountLocked, confidence: Low}
}

// providerTexts matches the known failure texts of the recognised
// provider (and the one whose servers it shares) and server software.
func (ev *evidence) providerTexts() (verdict, bool) {
	for _, e := range ev.knownEntries() {
		for _, t := range ev.texts {
			for _, rule := range e.texts {
				if rule.re.MatchString(t) {
					return rule.v, true
				}
			}
		}
	}
	return verdict{}, false
}

func (ev *evidence) knownEntries() []*entry {
	var es []*entry
	if p := ev.rec.provider; p != nil {
		es = append(es, p)
		if p.primary() != p {
			es = append(es, p.primary())
		}
	}
	if ev.rec.software != nil {
		es = append(es, ev.rec.software)
	}
	return es
}

// phrases matches the generic phrase rules, the reply's text first.
func (ev *evidence) phrases() (verdict, bool) {
	for _, t := range ev.texts {
		if v, ok := matchPhrase(t); ok {
			return v, true
		}
	}
	return verdict{}, false
}

// afterLogin: the password was accepted, then something failed. It is
// never the password.
func (ev *evidence) afterLogin() verdict {
	if ev.reply.Status == "NO" || ev.reply.Status == "BAD" {
		// A command after login was refused: the mailbox, not the login.
		return verdict{cause: CauseAuthorizationFailed, confidence: Low, alternative: CauseServerTemporaryFailure}
	}
	return verdict{cause: CauseServerTemporaryFailure, confidence: Low}
}
