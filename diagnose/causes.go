package diagnose

// Cause IDs. The strings are stable: logs, metrics, tests and docs use them.
// README.md ("What each diagnosis means") says what each one means.
const (
	// What the user typed.
	CausePasswordSurroundingSpace Cause = "password.surrounding_space"
	CausePasswordFullwidth        Cause = "password.fullwidth"
	CausePasswordNonASCII         Cause = "password.non_ascii"
	CausePasswordEmpty            Cause = "password.empty"
	CauseUsernameMissingDomain    Cause = "username.missing_domain"
	CauseUsernameSurroundingSpace Cause = "username.surrounding_space"
	CauseUsernameFullwidth        Cause = "username.fullwidth"

	// What the provider or server requires.
	CauseProviderAppPasswordRequired Cause = "provider.app_password_required"
	CauseProviderIMAPDisabled        Cause = "provider.imap_disabled"
	CauseProviderOAuthRequired       Cause = "provider.oauth_required"
	CauseProviderWebLoginRequired    Cause = "provider.web_login_required"
	CauseAccountLocked               Cause = "account.locked"
	CauseAccountDisabled             Cause = "account.disabled"
	CauseAccountPasswordExpired      Cause = "account.password_expired"
	CauseAccountTooManyConnections   Cause = "account.too_many_connections"
	CauseServerTemporaryFailure      Cause = "server.temporary_failure"
	CauseServerPrivacyRequired       Cause = "server.privacy_required"
	CauseServerNoUsableMechanism     Cause = "server.no_usable_mechanism"
	// CauseServerBadCommand is not among the original causes: the server answered the
	// login command with BAD (it did not accept the command as sent: an
	// empty or oddly quoted password, a malformed command, or one sent in
	// the wrong state), which says nothing about the password's value.
	CauseServerBadCommand Cause = "server.bad_command"
	// CauseServerReferral is not among the original causes: the server answered with a
	// login referral (RFC 2221) or said "wrong host": the mailbox lives on
	// another server, which no password can fix.
	CauseServerReferral      Cause = "server.referral"
	CauseAuthorizationFailed Cause = "authorization.failed"
	// The server refuses the client's network or country, whatever the
	// password (intrusion prevention, IP or country block lists).
	CausePolicyAddressBlocked Cause = "policy.address_blocked"
	// The provider refuses clients that do not identify themselves with
	// the IMAP ID command (NetEase's "Unsafe Login").
	CauseProviderClientIDRequired Cause = "provider.client_id_required"

	// History (the failure-history store).
	CauseCredentialsPasswordChanged   Cause = "credentials.password_changed"
	CauseCredentialsCapsLock          Cause = "credentials.caps_lock"
	CauseCredentialsRepeatedFailure   Cause = "credentials.repeated_failure"
	CauseUpstreamDNSNotFound          Cause = "upstream.dns_not_found"
	CauseUpstreamRefused              Cause = "upstream.refused"
	CauseUpstreamTimeout              Cause = "upstream.timeout"
	CauseUpstreamTLSMismatch          Cause = "upstream.tls_mismatch"
	CauseUpstreamCertificateName      Cause = "upstream.certificate_name"
	CauseUpstreamCertificateExpired   Cause = "upstream.certificate_expired"
	CauseUpstreamCertificateUntrusted Cause = "upstream.certificate_untrusted"
	CauseUpstreamNotIMAP              Cause = "upstream.not_imap"
	CauseUpstreamStartTLSUnavailable  Cause = "upstream.starttls_unavailable"

	// This computer's network, not the server: DNS gives no answer (unlike
	// a name that does not exist), or no route to the server's network.
	CauseNetworkDNSUnavailable Cause = "network.dns_unavailable"
	CauseNetworkUnreachable    Cause = "network.unreachable"

	// CauseCredentialsRejected is the honest fallback: the server said no
	// and nothing explains more.
	CauseCredentialsRejected Cause = "credentials.rejected"

	// The proxy's own refusals (no upstream attempt).
	CauseClientPlaintextRefused     Cause = "client.plaintext_refused"
	CauseClientRateLimited          Cause = "client.rate_limited"
	CauseClientTooManyConnections   Cause = "client.too_many_connections"
	CauseClientUnsupportedMechanism Cause = "client.unsupported_mechanism"
	// CauseClientUnknownDomain is not among the original causes: routing by email domain
	// found no server for the user's domain.
	CauseClientUnknownDomain Cause = "client.unknown_domain"
	// CauseClientInvalidUsername: the user name is too long or holds
	// characters no user name has (control or format characters); the
	// proxy refuses it itself.
	CauseClientInvalidUsername Cause = "client.invalid_username"
)

// causeInfo is one row of the cause table (README.md lists it for users).
type causeInfo struct {
	code      string // RFC 5530 code sent to the client
	temporary bool   // trying again later can help
}

// RFC 5530 response codes used in replies.
const (
	codeAuthenticationFailed = "AUTHENTICATIONFAILED"
	codeAuthorizationFailed  = "AUTHORIZATIONFAILED"
	codeUnavailable          = "UNAVAILABLE"
	codeLimit                = "LIMIT"
	codeContactAdmin         = "CONTACTADMIN"
	codeExpired              = "EXPIRED"
	codePrivacyRequired      = "PRIVACYREQUIRED"
	codeCannot               = "CANNOT"
)

// causes is the cause table. Its order is the order of Causes().
var causes = []struct {
	cause Cause
	info  causeInfo
}{
	{CausePasswordSurroundingSpace, causeInfo{codeAuthenticationFailed, false}},
	{CausePasswordFullwidth, causeInfo{codeAuthenticationFailed, false}},
	{CausePasswordNonASCII, causeInfo{codeAuthenticationFailed, false}},
	{CausePasswordEmpty, causeInfo{codeAuthenticationFailed, false}},
	{CauseUsernameMissingDomain, causeInfo{codeAuthenticationFailed, false}},
	{CauseUsernameSurroundingSpace, causeInfo{codeAuthenticationFailed, false}},
	{CauseUsernameFullwidth, causeInfo{codeAuthenticationFailed, false}},
	{CauseProviderAppPasswordRequired, causeInfo{codeAuthenticationFailed, false}},
	{CauseProviderIMAPDisabled, causeInfo{codeAuthenticationFailed, false}},
	{CauseProviderOAuthRequired, causeInfo{codeAuthenticationFailed, false}},
	{CauseProviderWebLoginRequired, causeInfo{codeAuthenticationFailed, false}},
	{CauseAccountLocked, causeInfo{codeUnavailable, true}},
	{CauseAccountDisabled, causeInfo{codeContactAdmin, false}},
	{CauseAccountPasswordExpired, causeInfo{codeExpired, false}},
	{CauseAccountTooManyConnections, causeInfo{codeLimit, true}},
	{CauseServerTemporaryFailure, causeInfo{codeUnavailable, true}},
	{CauseServerPrivacyRequired, causeInfo{codePrivacyRequired, false}},
	{CauseServerNoUsableMechanism, causeInfo{codeAuthenticationFailed, false}},
	{CauseServerBadCommand, causeInfo{codeAuthenticationFailed, false}},
	{CauseServerReferral, causeInfo{codeContactAdmin, false}},
	{CauseAuthorizationFailed, causeInfo{codeAuthorizationFailed, false}},
	// Temporary "maybe": a block list entry may expire.
	{CausePolicyAddressBlocked, causeInfo{codeUnavailable, false}},
	{CauseProviderClientIDRequired, causeInfo{codeAuthenticationFailed, false}},
	{CauseCredentialsPasswordChanged, causeInfo{codeAuthenticationFailed, false}},
	{CauseCredentialsCapsLock, causeInfo{codeAuthenticationFailed, false}},
	{CauseCredentialsRepeatedFailure, causeInfo{codeAuthenticationFailed, false}},
	{CauseUpstreamDNSNotFound, causeInfo{codeUnavailable, false}},
	// Temporary "maybe": a restarting server refuses too, so a later
	// retry can help; the message still points at the port.
	{CauseUpstreamRefused, causeInfo{codeUnavailable, true}},
	{CauseUpstreamTimeout, causeInfo{codeUnavailable, true}},
	{CauseUpstreamTLSMismatch, causeInfo{codeUnavailable, false}},
	{CauseUpstreamCertificateName, causeInfo{codeUnavailable, false}},
	{CauseUpstreamCertificateExpired, causeInfo{codeUnavailable, false}},
	{CauseUpstreamCertificateUntrusted, causeInfo{codeUnavailable, false}},
	{CauseUpstreamNotIMAP, causeInfo{codeUnavailable, false}},
	{CauseUpstreamStartTLSUnavailable, causeInfo{codeUnavailable, false}},
	{CauseNetworkDNSUnavailable, causeInfo{codeUnavailable, true}},
	{CauseNetworkUnreachable, causeInfo{codeUnavailable, true}},
	{CauseCredentialsRejected, causeInfo{codeAuthenticationFailed, false}},
	{CauseClientPlaintextRefused, causeInfo{codePrivacyRequired, false}},
	{CauseClientRateLimited, causeInfo{codeUnavailable, true}},
	{CauseClientTooManyConnections, causeInfo{codeLimit, true}},
	{CauseClientUnsupportedMechanism, causeInfo{codeCannot, false}},
	{CauseClientUnknownDomain, causeInfo{codeContactAdmin, false}},
	{CauseClientInvalidUsername, causeInfo{codeAuthenticationFailed, false}},
	{CauseOAuthTokenExpired, causeInfo{codeAuthenticationFailed, false}},
	{CauseOAuthWrongAudience, causeInfo{codeAuthenticationFailed, false}},
	{CauseOAuthScopeMissing, causeInfo{codeAuthenticationFailed, false}},
	{CauseOAuthUserMismatch, causeInfo{codeAuthenticationFailed, false}},
	{CauseOAuthMailboxNotEnabled, causeInfo{codeAuthorizationFailed, false}},
	{CauseOAuthTokenRejected, causeInfo{codeAuthenticationFailed, false}},
	{CauseOAuthReconnectRequired, causeInfo{codeAuthenticationFailed, false}},
	{CauseOAuthConsentRequired, causeInfo{codeContactAdmin, false}},
	{CauseOAuthProviderUnreachable, causeInfo{codeUnavailable, true}},
}

// causeIndex maps a cause to its row in causes.
var causeIndex = func() map[Cause]causeInfo {
	m := make(map[Cause]causeInfo, len(causes))
	for _, c := range causes {
		m[c.cause] = c.info
	}
	return m
}()

// Causes returns every cause ID Classify can return, in a fixed order
// (for metrics that pre-declare their labels, and for tests).
func Causes() []Cause {
	out := make([]Cause, len(causes))
	for i, c := range causes {
		out[i] = c.cause
	}
	return out
}

// Valid reports whether c is one of the known cause IDs.
func (c Cause) Valid() bool {
	_, ok := causeIndex[c]
	return ok
}

// Code is the RFC 5530 response code a NO for this cause carries
// (without brackets). Unknown causes get AUTHENTICATIONFAILED.
func (c Cause) Code() string {
	if info, ok := causeIndex[c]; ok {
		return info.code
	}
	return codeAuthenticationFailed
}

// Temporary reports whether trying again later can help.
func (c Cause) Temporary() bool {
	return causeIndex[c].temporary
}

// Of returns the Diagnosis for a cause the caller established itself, such
// as the proxy's own refusals (client.rate_limited, client.plaintext_refused):
// the code and temporariness from the cause table, High confidence.
func Of(c Cause) Diagnosis {
	return Diagnosis{Cause: c, Code: c.Code(), Confidence: High, Temporary: c.Temporary()}
}
