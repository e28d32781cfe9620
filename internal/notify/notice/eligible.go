package notice

import "github.com/imapwhy/imapwhy/diagnose"

// eligibleCauses are the causes typing the password again cannot fix: the
// provider's policy, the account's state, the server or the way to it, and
// the shield holding back a password the server has refused repeatedly.
// Every other cause (what was typed: password.*, username.*,
// credentials.rejected, credentials.caps_lock, credentials.password_changed,
// server.bad_command (often an empty or oddly typed password);
// and the proxy's own refusals client.*, which never reached the server)
// must get a NO, so that the app asks for the password again.
var eligibleCauses = map[diagnose.Cause]bool{
	diagnose.CauseProviderAppPasswordRequired:  true,
	diagnose.CauseProviderIMAPDisabled:         true,
	diagnose.CauseProviderOAuthRequired:        true,
	diagnose.CauseProviderWebLoginRequired:     true,
	diagnose.CauseAccountLocked:                true,
	diagnose.CauseAccountDisabled:              true,
	diagnose.CauseAccountPasswordExpired:       true,
	diagnose.CauseAccountTooManyConnections:    true,
	diagnose.CauseServerTemporaryFailure:       true,
	diagnose.CauseServerPrivacyRequired:        true,
	diagnose.CauseServerNoUsableMechanism:      true,
	diagnose.CauseServerReferral:               true,
	diagnose.CauseAuthorizationFailed:          true,
	diagnose.CauseCredentialsRepeatedFailure:   true,
	diagnose.CauseUpstreamDNSNotFound:          true,
	diagnose.CauseUpstreamRefused:              true,
	diagnose.CauseUpstreamTimeout:              true,
	diagnose.CauseUpstreamTLSMismatch:          true,
	diagnose.CauseUpstreamCertificateName:      true,
	diagnose.CauseUpstreamCertificateExpired:   true,
	diagnose.CauseUpstreamCertificateUntrusted: true,
	diagnose.CauseUpstreamNotIMAP:              true,
	diagnose.CauseUpstreamStartTLSUnavailable:  true,
	// A token for the wrong service, without the mail scope or for another
	// user, and a mailbox without IMAP: signing in again the same way does
	// not help. An expired or refused token is not here: the app must see
	// the NO to refresh it.
	diagnose.CauseOAuthWrongAudience:       true,
	diagnose.CauseOAuthScopeMissing:        true,
	diagnose.CauseOAuthUserMismatch:        true,
	diagnose.CauseOAuthMailboxNotEnabled:   true,
	diagnose.CausePolicyAddressBlocked:     true,
	diagnose.CauseProviderClientIDRequired: true,
	diagnose.CauseNetworkDNSUnavailable:    true,
	diagnose.CauseNetworkUnreachable:       true,
	// The OAuth bridge's stored sign-in has ended, the provider wants an
	// administrator's approval, or its sign-in service is out of reach:
	// the app password is right, and typing it again changes nothing.
	diagnose.CauseOAuthReconnectRequired:   true,
	diagnose.CauseOAuthConsentRequired:     true,
	diagnose.CauseOAuthProviderUnreachable: true,
}

// Eligible reports whether a failed login may be accepted into the notice
// mailbox instead of refused. Beyond the cause itself:
//
//   - a Low-confidence diagnosis (a guess) never is: if the guess is wrong
//     and the password was simply mistyped, the app would stop asking;
//   - nor is one whose alternative cause is about what was typed
//     (provider.app_password_required guessed from a password's shape comes
//     with the alternative credentials.rejected);
//   - except credentials.repeated_failure: the shield only holds back a
//     password the server has refused forwarded_tries times already, and
//     the device keeps sending it without asking anyone.
func Eligible(d diagnose.Diagnosis) bool {
	switch {
	case !eligibleCauses[d.Cause]:
		return false
	case d.Cause == diagnose.CauseCredentialsRepeatedFailure:
		return true
	case d.Confidence == diagnose.Low:
		return false
	case d.Alternative != "" && !eligibleCauses[d.Alternative]:
		return false
	}
	return true
}
