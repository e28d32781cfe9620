package imitate

import (
	"encoding/base64"
	"regexp"
	"strings"
)

// The texts below are copied from diagnose/testdata/provider-responses.jsonl
// ("corpus #N" is its N-th record) and from Dovecot 2.3.19 as observed
// on Debian 12. Where
// nothing was recorded the text is marked "assumed". Session tokens, host
// names and time stamps inside texts are frozen copies of recorded ones:
// real servers vary them per connection, and fingerprints must not depend
// on them.

// PostLoginCapabilities is what the imitations support after a successful
// login: go-imap's imapserver with the imapmemserver back end, configured
// as in newIMAPServer. Dovecot-like imitations announce it in their tagged
// OK, as Dovecot does with its own list.
const PostLoginCapabilities = "IMAP4rev1 SASL-IR LITERAL- UNSELECT ENABLE IDLE UTF8=ACCEPT NAMESPACE UIDPLUS MOVE"

const (
	gmailToken     = "q4mb70107656lfe" // corpus #7
	exchangeBanner = "[TABPADQAUAAxADIAMwBDAEEAMAAyADMAMwAuAEcAQgBSAFAAMQAyADMALgBQAFIATwBEAC4ATwBVAFQATABPAE8ASwAuAEMATwBNAA==]"
	icloudCaps     = "st11p00mm-iscream022 15E205 XAPPLEPUSHSERVICE IMAP4 IMAP4rev1 SASL-IR AUTH=ATOKEN AUTH=PLAIN"
	dovecotCaps    = "IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ AUTH=PLAIN AUTH=LOGIN"
	dovecotOK      = "OK [CAPABILITY " + PostLoginCapabilities + "] Logged in"
	dovecotFailed  = "NO [AUTHENTICATIONFAILED] Authentication failed."

	// GmailOAuthChallenge is Gmail's error challenge to a refused XOAUTH2 or
	// OAUTHBEARER login, as Google documents it: the base64 of
	// {"status":"401","schemes":"bearer mac","scope":"https://mail.google.com/"}
	// and a newline.
	GmailOAuthChallenge = "eyJzdGF0dXMiOiI0MDEiLCJzY2hlbWVzIjoiYmVhcmVyIG1hYyIsInNjb3BlIjoiaHR0cHM6Ly9tYWlsLmdvb2dsZS5jb20vIn0K"
	gmailOAuthSource    = "https://developers.google.com/gmail/imap/xoauth2-protocol (documented challenge); corpus #7 (observed)"
)

// microsoftToken is a JWT shaped like an Entra ID access token with these
// claims, a tenant and an expiry in 2100, and no real signature: the
// imitation takes any token, and imapwhy reads the claims only to explain.
func microsoftToken(claims string) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"typ":"JWT","alg":"RS256","kid":"imitation"}`)) + "." +
		enc([]byte(`{`+claims+`,"tid":"00000000-0000-0000-0000-00000000c0de","exp":4102444800}`)) + "." +
		enc([]byte("imitation, not signed"))
}

// sixteenLetters is the form of Google's and Yahoo's app passwords: 16
// letters, shown in groups of four (the spaces are optional).
var sixteenLetters = regexp.MustCompile(`^[a-z]{4} ?[a-z]{4} ?[a-z]{4} ?[a-z]{4}$`)

// Providers returns the built-in imitations, freshly built (callers may
// change them).
func Providers() []Provider {
	return []Provider{gmail(), microsoft365(), icloud(), yahoo(), dovecot(), docomo(), qq(), netease()}
}

func gmail() Provider {
	return Provider{
		ID:           "gmail",
		Name:         "Gmail",
		Host:         "imap.gmail.com",
		Greeting:     "* OK Gimap ready for requests from {client} " + gmailToken,
		Capabilities: strings.Fields("IMAP4rev1 UNSELECT IDLE NAMESPACE QUOTA ID XLIST CHILDREN X-GM-EXT-1 XYZZY SASL-IR AUTH=XOAUTH2 AUTH=PLAIN AUTH=PLAIN-CLIENTTOKEN AUTH=OAUTHBEARER AUTH=XOAUTH"),
		CapabilityOK: "OK Thats all she wrote! " + gmailToken,
		AppPassword:  sixteenLetters,
		Source:       "corpus #7 and the fingerprint table (observed)",
		Scenarios: []Scenario{{
			Name:        "oauth",
			User:        "oauth@gmail.com",
			Password:    "ya29.imitation-token",
			Rule:        AnyPassword,
			Mechanism:   mechOAuth,
			Reply:       "OK oauth@gmail.com authenticated (Success)",
			Description: "an app signed in with Google (XOAUTH2 or OAUTHBEARER): logged in",
			Source:      "fingerprint table (observed form)",
		}, {
			Name:        "oauth-token-refused",
			User:        "expired@gmail.com",
			Password:    "ya29.expired-token",
			Rule:        AnyPassword,
			Mechanism:   mechOAuth,
			Challenge:   GmailOAuthChallenge,
			Reply:       "NO [AUTHENTICATIONFAILED] Invalid credentials (Failure)",
			Description: "the token expired, was revoked, or lacks https://mail.google.com/: the error challenge, then NO",
			Source:      gmailOAuthSource,
		}, {
			Name:        "app-password-required",
			User:        "apppw@gmail.com",
			Password:    "my-google-password",
			Rule:        NotAppPasswordForm,
			Reply:       "NO [ALERT] Application-specific password required: https://support.google.com/accounts/answer/185833 (Failure)",
			Description: "2-Step Verification is on and the app sent the Google account password",
			Source:      "corpus #1 (observed)",
		}, {
			Name:        "app-password",
			User:        "apppw@gmail.com",
			Password:    "abcd efgh ijkl mnop",
			Rule:        AppPasswordForm,
			Reply:       "OK apppw@gmail.com authenticated (Success)",
			Description: "the same account with an app password: logged in",
			Source:      "fingerprint table (observed form, without the display name)",
		}, {
			Name:        "invalid-credentials",
			User:        "wrong@gmail.com",
			Password:    "wrong-password",
			Rule:        AnyPassword,
			Reply:       "NO [AUTHENTICATIONFAILED] Invalid credentials (Failure)",
			Description: "wrong password, no 2-Step Verification (no app password possible), or a revoked app password",
			Source:      "corpus #2 (observed)",
		}, {
			Name:     "web-login-required",
			User:     "weblogin@gmail.com",
			Password: "my-google-password",
			Rule:     AnyPassword,
			Untagged: []string{
				"* NO [WEBALERT https://accounts.google.com/signin/continue?sarp=1&scc=1&plt=AKgnsbtt...] Web login required.",
			},
			Reply:       "NO [ALERT] Please log in via your web browser: https://support.google.com/mail/accounts/answer/78754 (Failure)",
			Description: "Google's risk checks blocked the sign-in; the user must confirm it in a browser",
			Source:      "corpus #3 (observed; the URL token is elided there and here)",
		}, {
			Name:        "imap-disabled",
			User:        "imapoff@gmail.com",
			Password:    "abcdefghijklmnop",
			Rule:        AnyPassword,
			Reply:       "NO [ALERT] Your account is not enabled for IMAP use. Please visit your Gmail settings page and enable your account for IMAP access. (Failure)",
			Description: "IMAP switched off in the Gmail settings (historical: the switch was removed in 2025)",
			Source:      "corpus #4 (secondhand)",
		}, {
			Name:        "imap-disabled-for-domain",
			User:        "staff@workspace.example",
			Password:    "abcdefghijklmnop",
			Rule:        AnyPassword,
			Reply:       "NO [ALERT] IMAP access is disabled for your domain. Please contact your domain administrator for questions about this feature. (Failure)",
			Description: "a Google Workspace administrator turned IMAP off",
			Source:      "corpus #5 (secondhand)",
		}},
		Otherwise: []Scenario{
			{Name: "oauth-token-refused", Rule: AnyPassword, Mechanism: mechOAuth, Challenge: GmailOAuthChallenge,
				Reply: "NO [AUTHENTICATIONFAILED] Invalid credentials (Failure)"},
			{Name: "app-password", Rule: AppPasswordForm, Reply: "OK {user} authenticated (Success)"},
			{Name: "invalid-credentials", Rule: AnyPassword, Reply: "NO [AUTHENTICATIONFAILED] Invalid credentials (Failure)"},
		},
		texts: sessionTexts{
			noop:      "OK Success",                                    // assumed
			id:        `* ID ("name" "GImap" "vendor" "Google, Inc.")`, // fingerprint table, shortened there
			idOK:      "OK Success",                                    // assumed
			logoutBye: "* BYE LOGOUT Requested",                        // assumed
			logout:    "OK 73 good day (Success)",                      // assumed
			literal:   "+ go ahead",                                    // assumed
		},
	}
}

func microsoft365() Provider {
	return Provider{
		ID:           "microsoft365",
		Name:         "Microsoft 365 / Outlook.com",
		Host:         "outlook.office365.com",
		Greeting:     "* OK The Microsoft Exchange IMAP4 service is ready. " + exchangeBanner,
		Capabilities: strings.Fields("IMAP4 IMAP4rev1 AUTH=PLAIN AUTH=XOAUTH2 SASL-IR UIDPLUS ID UNSELECT CHILDREN IDLE NAMESPACE LITERAL+"),
		CapabilityOK: "OK CAPABILITY completed.", // assumed
		Source:       "corpus #10 (observed; the banner decodes to LO4P123CA0233.GBRP123.PROD.OUTLOOK.COM)",
		Scenarios: []Scenario{{
			Name:        "oauth",
			User:        "oauth@contoso.example",
			Password:    microsoftToken(`"aud":"https://outlook.office.com","scp":"IMAP.AccessAsUser.All","upn":"oauth@contoso.example"`),
			Rule:        AnyPassword,
			Mechanism:   mechOAuth,
			Reply:       "OK AUTHENTICATE completed.",
			Description: "an app with a token for IMAP (IMAP.AccessAsUser.All): logged in",
			Source:      "corpus #15 (observed)",
		}, {
			Name:         "oauth-not-connected",
			User:         "shared@contoso.example",
			Password:     microsoftToken(`"aud":"https://outlook.office.com","roles":["IMAP.AccessAsApp"]`),
			Rule:         AnyPassword,
			Mechanism:    mechOAuth,
			Reply:        "OK AUTHENTICATE completed.",
			NotConnected: true,
			Description:  "the token is accepted, but its user may not open the mailbox (or IMAP is off for it): every command then gets BAD User is authenticated but not connected.",
			Source:       "corpus #15 (observed)",
		}, {
			Name:        "oauth-failed",
			User:        "graph@contoso.example",
			Password:    microsoftToken(`"aud":"https://graph.microsoft.com","scp":"Mail.Read User.Read","upn":"graph@contoso.example"`),
			Rule:        AnyPassword,
			Mechanism:   mechOAuth,
			Reply:       "NO AUTHENTICATE failed.",
			Description: "a token Exchange does not take (expired, for Microsoft Graph, without IMAP.AccessAsUser.All, another user's): no reason given",
			Source:      "corpus #14 (observed)",
		}, {
			Name:        "basic-auth-off-plain",
			User:        "user@outlook.com",
			Password:    "my-microsoft-password",
			Rule:        AnyPassword,
			Mechanism:   "PLAIN",
			Reply:       "NO AUTHENTICATE failed.",
			Description: "the same refusal to AUTHENTICATE PLAIN",
			Source:      "corpus #13 (observed)",
		}, {
			Name:        "basic-auth-off",
			User:        "user@outlook.com",
			Password:    "my-microsoft-password",
			Rule:        AnyPassword,
			Reply:       "NO LOGIN failed.",
			AuthReply:   "NO AUTHENTICATE failed.",
			Description: "Microsoft no longer takes passwords over IMAP (OAuth only) and does not say so",
			Source:      "corpus #10, #12 (observed)",
		}, {
			Name:        "basic-auth-blocked",
			User:        "blocked@outlook.com",
			Password:    "my-microsoft-password",
			Rule:        AnyPassword,
			Reply:       "NO LOGIN failed. BasicAuthBlocked",
			AuthReply:   "NO AUTHENTICATE failed. BasicAuthBlocked",
			Description: "the newer reply that names the policy",
			Source:      "corpus #11 (secondhand)",
		}},
		Otherwise: []Scenario{
			{Name: "oauth-failed", Rule: AnyPassword, Mechanism: mechOAuth, Reply: "NO AUTHENTICATE failed."},
			{Name: "login-failed", Rule: AnyPassword, Reply: "NO LOGIN failed.", AuthReply: "NO AUTHENTICATE failed."},
		},
		texts: sessionTexts{
			noop:      "OK NOOP completed.",                                        // assumed
			idOK:      "OK ID completed.",                                          // assumed
			logoutBye: "* BYE Microsoft Exchange Server IMAP4 server signing off.", // fingerprint table
			logout:    "OK LOGOUT completed.",                                      // assumed
		},
	}
}

func icloud() Provider {
	refused := Scenario{
		Name:        "apple-id-password",
		User:        "taro@icloud.com",
		Password:    "my-apple-id-password",
		Rule:        NotAppPasswordForm,
		Reply:       "NO [AUTHENTICATIONFAILED] Authentication failed",
		Description: "the Apple ID password; with two-factor authentication iCloud wants an app-specific password",
		Source:      "corpus #22 (observed)",
	}
	accepted := Scenario{
		Name:        "app-specific-password",
		User:        "taro@icloud.com",
		Password:    "abcd-efgh-ijkl-mnop",
		Rule:        AppPasswordForm,
		Reply:       "OK LOGIN completed",
		AuthReply:   "OK AUTHENTICATE completed",
		Description: "the same account with an app-specific password: logged in",
		Source:      "assumed (no iCloud success line recorded)",
	}
	return greetingWithCapabilities(icloudCaps, "iSCREAM ready to rumble (15E205-0982aaf890fd:18514) st11p00mm-iscream022 [04:19:14:31:21:53]", Provider{
		ID:           "icloud",
		Name:         "iCloud Mail",
		Host:         "imap.mail.me.com",
		CapabilityOK: "OK !!",
		AppPassword:  regexp.MustCompile(`^[a-z]{4}-[a-z]{4}-[a-z]{4}-[a-z]{4}$`),
		Source:       "corpus #22 (observed)",
		Scenarios:    []Scenario{refused, accepted},
		Otherwise:    appPasswordsOnly(accepted, "authentication-failed", refused),
		texts:        sessionTexts{noop: "OK !!", idOK: "OK !!", logout: "OK !!"}, // assumed, after CAPABILITY's "OK !!"
	})
}

func yahoo() Provider {
	refused := Scenario{
		Name:        "account-password",
		User:        "taro@yahoo.com",
		Password:    "my-yahoo-password",
		Rule:        NotAppPasswordForm,
		Reply:       "NO [AUTHENTICATIONFAILED] LOGIN Invalid credentials",
		AuthReply:   "NO [AUTHENTICATIONFAILED] AUTHENTICATE Invalid credentials",
		Description: "the account password; Yahoo wants an app password for mail apps (or the password is wrong)",
		Source:      "corpus #18, #19 (observed)",
	}
	accepted := Scenario{
		Name:        "app-password",
		User:        "taro@yahoo.com",
		Password:    "abcdefghijklmnop",
		Rule:        AppPasswordForm,
		Reply:       "OK LOGIN completed",
		AuthReply:   "OK AUTHENTICATE completed",
		Description: "the same account with an app password: logged in",
		Source:      "assumed (no Yahoo success line recorded)",
	}
	return Provider{
		ID:   "yahoo",
		Name: "Yahoo Mail",
		Host: "imap.mail.yahoo.com",
		// The 2024 greeting has no capability list; the list is the one
		// the older imapgate greeting carried (assumed to be unchanged).
		Greeting:     "* OK Welcome! IMAP Server up and ready to accept your request",
		Capabilities: strings.Fields("IMAP4rev1 ID MOVE NAMESPACE X-ID-ACLID UIDPLUS LITERAL+ CHILDREN XAPPLEPUSHSERVICE XYMHIGHESTMODSEQ AUTH=PLAIN AUTH=LOGIN AUTH=XOAUTH2 AUTH=XYMCOOKIE AUTH=XYMECOOKIE AUTH=XYMCOOKIEB64 AUTH=XYMPKI"),
		CapabilityOK: "OK CAPABILITY completed", // assumed
		AppPassword:  sixteenLetters,
		Source:       "greeting corpus #18 (observed 2024); capabilities fingerprint table (2015-17)",
		Scenarios:    []Scenario{refused, accepted},
		Otherwise:    appPasswordsOnly(accepted, "invalid-credentials", refused),
	}
}

// appPasswordsOnly is the Otherwise of a provider that wants app passwords
// (or authorization codes) from mail apps: a password of that form logs any
// user in as accepted does; any other is refused, as refused is, under the
// name refusedName.
func appPasswordsOnly(accepted Scenario, refusedName string, refused Scenario) []Scenario {
	return []Scenario{
		{Name: accepted.Name, Rule: AppPasswordForm, Reply: accepted.Reply, AuthReply: accepted.AuthReply},
		{Name: refusedName, Rule: AnyPassword, Reply: refused.Reply, AuthReply: refused.AuthReply},
	}
}

// dovecotTexts are Dovecot 2.3's answers (ID observed in the peers notes;
// the others from Dovecot's source).
var dovecotTexts = sessionTexts{
	noop:      "OK NOOP completed.",
	id:        `* ID ("name" "Dovecot")`,
	idOK:      "OK ID completed.",
	logoutBye: "* BYE Logging out",
	logout:    "OK Logout completed.",
	literal:   "+ OK",
}

// greetingWithCapabilities returns p greeting with "* OK [CAPABILITY caps]
// text" and answering CAPABILITY with the same list, as servers that
// announce their capabilities in the greeting do.
func greetingWithCapabilities(caps, text string, p Provider) Provider {
	p.Greeting = "* OK [CAPABILITY " + caps + "] " + text
	p.Capabilities = strings.Fields(caps)
	return p
}

// dovecotLike returns p as a Dovecot 2.3 server with these pre-login
// capabilities greets and answers: its texts, and its one refusal for
// users no scenario names.
func dovecotLike(caps string, p Provider) Provider {
	p = greetingWithCapabilities(caps, "Dovecot ready.", p)
	p.CapabilityOK = "OK Pre-login capabilities listed, post-login capabilities have more."
	p.Otherwise = []Scenario{{Name: "authentication-failed", Rule: AnyPassword, Reply: dovecotFailed}}
	p.texts = dovecotTexts
	return p
}

func dovecot() Provider {
	return dovecotLike(dovecotCaps, Provider{
		ID:     "dovecot",
		Name:   "Dovecot server (self-hosted or ISP)",
		Host:   "mail.example.net",
		Source: "peers notes (Dovecot 2.3.19 on 993, observed) and corpus #30",
		Scenarios: []Scenario{{
			Name:        "logged-in",
			User:        "alice@example.net",
			Password:    "alicepass",
			Rule:        ExactPassword,
			Reply:       dovecotOK,
			Description: "right password: logged in",
			Source:      "peers notes (observed form; the list is the imitation's own)",
		}, {
			Name:        "wrong-password",
			User:        "alice@example.net",
			Password:    "wrongpass",
			Rule:        AnyPassword,
			Reply:       dovecotFailed,
			Description: "wrong password (an unknown user gets the same)",
			Source:      "peers notes, corpus #30 (observed)",
		}, {
			Name:        "login-disabled",
			User:        "nologin@example.net",
			Password:    "nologinpass",
			Rule:        ExactPassword,
			Reply:       "NO [CONTACTADMIN] Login disabled for this user",
			Description: "the administrator disabled the account (nologin, no reason given)",
			Source:      "peers notes (observed)",
		}, {
			Name:        "account-disabled",
			User:        "disabled@example.net",
			Password:    "disabledpass",
			Rule:        ExactPassword,
			Reply:       "NO [CONTACTADMIN] Your account is disabled: contact support@example.invalid",
			Description: "the administrator disabled the account and gave a reason",
			Source:      "peers notes (observed)",
		}, {
			Name:        "password-expired",
			User:        "expired@example.net",
			Password:    "expiredpass",
			Rule:        ExactPassword,
			Reply:       "NO [EXPIRED] Authentication failed.",
			Description: "the password expired and must be changed",
			Source:      "Dovecot source (login-common: EXPIRED with the passdb's reason, else the default text)",
		}, {
			Name:        "temporary-failure",
			User:        "tempfail@example.net",
			Password:    "tempfailpass",
			Rule:        AnyPassword,
			Reply:       "NO [UNAVAILABLE] Temporary authentication failure. [mail:2026-11-27 10:07:51]",
			Description: "the password database is down; try again later",
			Source:      "peers notes, corpus #31 (observed; host and time frozen)",
		}, {
			Name:        "too-many-connections",
			User:        "busy@example.net",
			Password:    "busypass",
			Rule:        ExactPassword,
			Reply:       "NO [LIMIT] Maximum number of connections from user+IP exceeded (mail_max_userip_connections=10)",
			Description: "too many connections from this user and address",
			Source:      "peers notes (observed with Dovecot 2.3.19), corpus #35",
		}},
	})
}

// docomo imitates docomo mail. No wire text of it is known (corpus #66 is a
// help page): it is assumed to run a Dovecot-like platform, as many
// Japanese providers do.
func docomo() Provider {
	const caps = "IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ AUTH=PLAIN"
	const assumed = "assumed (Dovecot's text; docomo's own is not known)"
	return dovecotLike(caps, Provider{
		ID:      "docomo",
		Name:    "docomo mail",
		Host:    "imap.spmode.ne.jp",
		Assumed: true,
		Source:  "assumed: a Dovecot-like platform (corpus #66 documents the cause, not the text)",
		Scenarios: []Scenario{{
			Name:        "imap-password",
			User:        "taro@docomo.ne.jp",
			Password:    "Imap0nlyPass",
			Rule:        ExactPassword,
			Reply:       dovecotOK,
			Description: "the IMAP-only password (IMAP専用パスワード): logged in",
			Source:      assumed,
		}, {
			Name:        "password-trailing-space",
			User:        "taro@docomo.ne.jp",
			Password:    "Imap0nlyPass ",
			Rule:        ExactPassword,
			Reply:       dovecotFailed,
			Description: "the IMAP-only password with a trailing space (as some keyboards add)",
			Source:      assumed,
		}, {
			Name:        "password-fullwidth",
			User:        "taro@docomo.ne.jp",
			Password:    "Ｉｍａｐ０ｎｌｙＰａｓｓ",
			Rule:        ExactPassword,
			Reply:       dovecotFailed,
			Description: "the IMAP-only password typed in full-width characters (Japanese input on)",
			Source:      assumed,
		}, {
			Name:        "d-account-password",
			User:        "taro@docomo.ne.jp",
			Password:    "my-d-account-password",
			Rule:        AnyPassword,
			Reply:       dovecotFailed,
			Description: "the d ACCOUNT password (dアカウント) instead of the IMAP-only password",
			Source:      assumed,
		}},
	})
}

// qq imitates QQ Mail: mail apps need the "authorization code" (授权码),
// 16 lower-case letters, not the QQ password.
func qq() Provider {
	const caps = "IMAP4 IMAP4rev1 ID AUTH=PLAIN AUTH=LOGIN AUTH=XOAUTH2 NAMESPACE"
	refused := Scenario{
		Name:        "qq-password",
		User:        "li@qq.com",
		Password:    "my-qq-password",
		Rule:        NotAppPasswordForm,
		Reply:       "NO Please using authorized code to login. More information at http://service.mail.qq.com/cgi-bin/help?subtype=1&&id=28&&no=1001256",
		Description: "the QQ password; mail apps need the authorization code (授权码)",
		Source:      "nylas sync-engine inbox/auth/utils.py (the prefix and its help page)",
	}
	accepted := Scenario{
		Name:        "authorization-code",
		User:        "li@qq.com",
		Password:    "abcdefghijklmnop",
		Rule:        AppPasswordForm,
		Reply:       "OK Success login ok",
		Description: "the same account with its authorization code: logged in",
		Source:      "assumed (no QQ success line recorded)",
	}
	return greetingWithCapabilities(caps, "QQMail XMIMAP4Server ready", Provider{
		ID:           "qq",
		Name:         "QQ Mail",
		Host:         "imap.qq.com",
		CapabilityOK: "OK CAPABILITY Completed",
		AppPassword:  regexp.MustCompile(`^[a-z]{16}$`),
		Assumed:      true,
		Source:       "assumed greeting and capabilities; the refusal text is quoted by client error classifiers (nylas sync-engine)",
		Scenarios:    []Scenario{refused, accepted},
		Otherwise:    appPasswordsOnly(accepted, "qq-password", refused),
	})
}

// netease imitates NetEase Mail (163.com) on Coremail: mail apps need the
// authorization code set in web mail; a wrong one gets Coremail's text.
func netease() Provider {
	refused := Scenario{
		Name:        "web-password",
		User:        "li@163.com",
		Password:    "my-163-password",
		Rule:        NotAppPasswordForm,
		Reply:       "NO LOGIN Login error password error",
		Description: "the web mail password; mail apps need the authorization code (授权码)",
		Source:      "the text as quoted by clients with this fix (code corpus)",
	}
	accepted := Scenario{
		Name:        "authorization-code",
		User:        "li@163.com",
		Password:    "ABCDEFGHIJKLMNOP",
		Rule:        AppPasswordForm,
		Reply:       "OK LOGIN completed",
		Description: "the same account with its authorization code: logged in",
		Source:      "Coremail's success line (code corpus)",
	}
	return Provider{
		ID:           "netease",
		Name:         "NetEase Mail",
		Host:         "imap.163.com",
		Greeting:     "* OK Coremail System IMap Server Ready(163com[726cd87d72d896a1ac393507346040fa])",
		Capabilities: strings.Fields("IMAP4rev1 XLIST SPECIAL-USE ID LITERAL+ XAPPLEPUSHSERVICE UIDPLUS X-CM-EXT-1 AUTH=PLAIN"),
		CapabilityOK: "OK CAPABILITY completed",
		AppPassword:  regexp.MustCompile(`^[A-Z]{16}$`),
		Source:       "greeting and capabilities from a telnet transcript of imap.163.com (code corpus; AUTH=PLAIN added, assumed); the wrong-password text quoted by clients",
		Scenarios:    []Scenario{refused, accepted},
		Otherwise:    appPasswordsOnly(accepted, "wrong", refused),
	}
}
