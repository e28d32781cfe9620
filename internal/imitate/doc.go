// Package imitate runs in-process imitations of IMAP providers that tests
// and the demo cannot reach: Gmail, Microsoft 365, iCloud, Yahoo, a
// Dovecot server, docomo, QQ Mail and NetEase (163). Each listens on loopback with implicit TLS and
// a certificate for the real host name (imap.gmail.com, ...) signed by an
// in-memory CA, so a client verifies it for real with ServerName set to
// Provider.Host and CA.Pool() as its roots.
//
// Before login an imitation answers with the provider's own texts, copied
// from the corpus (diagnose/testdata/provider-responses.jsonl): the greeting, the CAPABILITY list and its tagged OK,
// and the exact untagged and tagged lines that end each login. This part is
// a small scripted layer of our own (session.go), because go-imap's
// imapserver writes its own greeting and capability list and cannot send
// an untagged line before a tagged NO; those lines are what fingerprinting
// and diagnosis read, so they must be the provider's. After a successful
// login the connection is handed to go-imap's imapserver with the
// imapmemserver back end (through package handoff): SELECT, FETCH, IDLE
// and the rest are real IMAP, and INBOX holds one message (WelcomeSubject).
//
// Usage:
//
//	ca, _ := imitate.NewCA()
//	p, _ := imitate.Lookup("gmail")
//	srv, _ := imitate.Start(p, imitate.Options{CA: ca})
//	defer srv.Close()
//	// dial srv.Addr() with tls.Config{ServerName: p.Host, RootCAs: ca.Pool()}
//
// # Scenarios
//
// The user name selects the scenario; the password matters where the real
// provider would tell it apart. The first scenario whose user (compared
// case-insensitively), mechanism and password rule fit decides; a user not
// listed gets the provider's Otherwise rules (the "(others)" rows). "app pw" is the
// provider's app-password form: Gmail and Yahoo 16 letters a-z (Gmail's may
// be grouped by spaces), iCloud xxxx-xxxx-xxxx-xxxx; "auth code" is QQ's
// (16 letters a-z) and NetEase's (16 letters A-Z) authorization code.
//
//	provider      user                     password            tagged reply (after the tag)
//	gmail         oauth@gmail.com          any token (OAuth)   OK oauth@gmail.com authenticated (Success)
//	              expired@gmail.com        any token (OAuth)   + eyJzdGF0dXMiOiI0MDEi... (GmailOAuthChallenge), then after the client's answer:
//	                                                           NO [AUTHENTICATIONFAILED] Invalid credentials (Failure)
//	              apppw@gmail.com          not an app pw       NO [ALERT] Application-specific password required: https://support.google.com/accounts/answer/185833 (Failure)
//	              apppw@gmail.com          app pw              OK apppw@gmail.com authenticated (Success)
//	              wrong@gmail.com          any                 NO [AUTHENTICATIONFAILED] Invalid credentials (Failure)
//	              weblogin@gmail.com       any                 * NO [WEBALERT https://accounts.google.com/signin/continue?...] Web login required.
//	                                                           NO [ALERT] Please log in via your web browser: https://support.google.com/mail/accounts/answer/78754 (Failure)
//	              imapoff@gmail.com        any                 NO [ALERT] Your account is not enabled for IMAP use. ... (Failure)
//	              staff@workspace.example  any                 NO [ALERT] IMAP access is disabled for your domain. ... (Failure)
//	              (others)                 app pw / other      OK <user> authenticated (Success) / Invalid credentials as above
//	              (others, OAuth)          any token           the challenge and NO of expired@gmail.com
//	microsoft365  oauth@contoso.example    any token (OAuth)   OK AUTHENTICATE completed.
//	              shared@contoso.example   any token (OAuth)   OK AUTHENTICATE completed., then every command: BAD User is authenticated but not connected.
//	                                                           (and * BYE Connection closed. 14 after the second)
//	              graph@contoso.example    any token (OAuth)   NO AUTHENTICATE failed.
//	              (others, OAuth)          any token           NO AUTHENTICATE failed.
//	              user@outlook.com         any                 NO LOGIN failed.  (AUTHENTICATE PLAIN: NO AUTHENTICATE failed.)
//	              blocked@outlook.com      any                 NO LOGIN failed. BasicAuthBlocked  (PLAIN: NO AUTHENTICATE failed. BasicAuthBlocked)
//	              (others)                 any password        as user@outlook.com: no password is ever accepted
//	icloud        taro@icloud.com          not an app pw       NO [AUTHENTICATIONFAILED] Authentication failed
//	              taro@icloud.com          app pw              OK LOGIN completed  (assumed)
//	              (others)                 app pw / other      the same
//	yahoo         taro@yahoo.com           not an app pw       NO [AUTHENTICATIONFAILED] LOGIN Invalid credentials  (PLAIN: ... AUTHENTICATE Invalid credentials)
//	              taro@yahoo.com           app pw              OK LOGIN completed  (assumed)
//	              (others)                 app pw / other      the same
//	dovecot       alice@example.net        alicepass           OK [CAPABILITY <PostLoginCapabilities>] Logged in
//	              alice@example.net        other               NO [AUTHENTICATIONFAILED] Authentication failed.
//	              nologin@example.net      nologinpass         NO [CONTACTADMIN] Login disabled for this user
//	              disabled@example.net     disabledpass        NO [CONTACTADMIN] Your account is disabled: contact support@example.invalid
//	              expired@example.net      expiredpass         NO [EXPIRED] Authentication failed.
//	              tempfail@example.net     any                 NO [UNAVAILABLE] Temporary authentication failure. [mail:2026-11-27 10:07:51]
//	              busy@example.net         busypass            NO [LIMIT] Maximum number of connections from user+IP exceeded (mail_max_userip_connections=10)
//	              (others, wrong passwords)                    NO [AUTHENTICATIONFAILED] Authentication failed.
//	docomo        taro@docomo.ne.jp        Imap0nlyPass        OK [CAPABILITY <PostLoginCapabilities>] Logged in
//	(assumed)     taro@docomo.ne.jp        "Imap0nlyPass "     NO [AUTHENTICATIONFAILED] Authentication failed.  (trailing space)
//	              taro@docomo.ne.jp        Ｉｍａｐ０ｎｌｙＰａｓｓ NO [AUTHENTICATIONFAILED] Authentication failed.  (full-width)
//	              taro@docomo.ne.jp        other               NO [AUTHENTICATIONFAILED] Authentication failed.  (d ACCOUNT password)
//	qq            li@qq.com                not an auth code    NO Please using authorized code to login. More information at http://service.mail.qq.com/...
//	              li@qq.com                auth code           OK Success login ok  (assumed)
//	              (others)                 auth code / other   the same
//	netease       li@163.com               not an auth code    NO LOGIN Login error password error
//	              li@163.com               auth code           OK LOGIN completed
//	              (others)                 auth code / other   the same
//
// Each Scenario also names the corpus record its text comes from (Source).
// docomo's wire text is not known at all: that imitation is a Dovecot-like
// platform and says so (Provider.Assumed). Session tokens, host names and
// time stamps inside texts are frozen copies of recorded ones.
package imitate
