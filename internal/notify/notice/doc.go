// Package notice is the notice mailbox: a read-only IMAP mailbox
// whose INBOX holds one message explaining why the real login failed, for
// mail apps that show nothing of the server's words (iPhone and Mac Mail
// show only "password incorrect").
//
// When a login fails for a cause that typing the password again cannot
// fix (Eligible: provider policy, account state, server and connection
// problems, or the shield holding back a password the server has already
// refused several times), a listener with notice_mailbox: true answers
// the login with OK and hands the connection to Server.Serve, which runs
// go-imap's imapserver in PREAUTH mode on a backend of our own. The app
// then shows the one message; every write (APPEND, STORE, COPY, MOVE,
// EXPUNGE, CREATE, DELETE, RENAME) is refused with NO [CANNOT], so nothing
// can be lost, and the session is closed after MaxSession so that the app
// logs in again, when the real server is tried first.
//
//	if notice.Eligible(d) {
//		front.loggedIn(tag, notice.Capabilities())
//		srv.Serve(conn, pending, notice.Notice{User: user, Lang: "ja", Message: text, ...})
//	}
package notice
