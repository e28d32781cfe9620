// Package check tests the whole path from a mail app to an IMAP mailbox,
// step by step, the way a support person would by hand, and says which step
// fails and why: finding the server for the address (discovery), DNS, the
// TCP connection, TLS (version, certificate, whether it verifies), the
// greeting (which provider or server software), CAPABILITY (login methods,
// LOGINDISABLED), STARTTLS when chosen, the login, INBOX and LOGOUT.
//
// A failed step carries a diagnosis from package diagnose, built from the
// same facts the proxy records for a failed upstream login (connection
// errors via diagnose.NetErrorOf, greeting, capabilities, the server's
// lines, facts about the typed password), so `imapwhy check` and the proxy
// explain the same failure the same way. Steps that cannot run after a
// failure are reported as skipped. The Report also answers the classic
// support checklist: password typed correctly, server name, port, SSL/TLS.
//
//	r := check.Run(ctx, "alice@example.com", password, check.Options{
//		Lang:     "ja",
//		Progress: printer.Step, // each step as it starts and ends
//	})
//	if !r.OK {
//		fmt.Println(r.Diagnosis.Message)
//	}
//
// The session (the login, SELECT, LOGOUT) uses go-imap's imapclient over
// the connection the earlier steps established. The greeting, CAPABILITY
// and STARTTLS before it are read and sent by this package itself: a
// greeting that is not IMAP (an SMTP or POP3 server on the port) must be
// seen as raw text, and STARTTLS and the handshake after it are separate
// steps with their own diagnosis.
//
// The password is used for the login only. It is never part of a Report,
// an error or the output, and server text shown to the user is scrubbed of
// it in case a server quotes the command back.
package check
