// Package shield keeps the history of logins that imapwhy uses to explain a
// failure by what worked before, and to stop forwarding a password that
// keeps failing before the provider locks the account. It also
// holds the per-address throttles: the failure delay, login rate limits and
// the connection limit.
//
// The history never holds a password or a user name. A user is stored under
// an HMAC of the lower-cased user name, and a password as a verifier:
// HMAC-SHA256(secret, argon2id(password, salt)), with a random salt per user
// and a 32-byte secret that the memory store makes at start and the file
// store keeps in state_dir/secret (mode 0600). Per user it keeps the last
// few passwords that worked (for history_ttl) and the last few that the
// server refused (for window after they were last forwarded).
//
// One login goes through an Attempt:
//
//	a := sh.Begin(user, password)
//	if hold, hist := a.Check(); hold {
//		// answer from history: obs.History = hist, diagnose.Classify says
//		// credentials.repeated_failure; nothing is sent upstream
//	}
//	// ... log in upstream ...
//	// refused by the server:
//	obs.History = a.Explain()
//	d := diagnose.Classify(obs)
//	a.Failed(d.Cause)
//	// or logged in:
//	a.Succeeded()
//
// Which refusals count: only a cause that says these credentials are wrong
// and will stay wrong (credentials.*, password.*, username.*,
// provider.app_password_required, provider.oauth_required,
// account.password_expired) is recorded. A refusal that the same password
// may get past later (account.locked, provider.imap_disabled,
// provider.web_login_required, a temporary server problem, a network error)
// is never held back: holding a right password would lock the user out
// ourselves.
//
// The shield fails open: when the store cannot be read or written, the
// error goes to Options.OnError and the login is forwarded as if there were
// no history.
package shield
