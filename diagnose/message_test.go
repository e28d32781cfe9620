package diagnose

import (
	"regexp"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// checkMessage enforces the rules for user text.
func checkMessage(t *testing.T, lang string, d Diagnosis, msg string) {
	t.Helper()
	switch {
	case msg == "":
		t.Errorf("%s %+v: empty message", lang, d)
	case utf8.RuneCountInString(msg) > MaxMessage:
		t.Errorf("%s %+v: %d characters: %s", lang, d, utf8.RuneCountInString(msg), msg)
	case strings.IndexFunc(msg, unicode.IsControl) >= 0:
		t.Errorf("%s %+v: control character in %q", lang, d, msg)
	case strings.ContainsAny(msg, "{}"):
		t.Errorf("%s %+v: placeholder left in %q", lang, d, msg)
	case lang == "en" && !isASCIIPrintable(msg):
		t.Errorf("%s %+v: not ASCII: %q", lang, d, msg)
	}
}

// TestMessagesComplete renders every cause in every language, without and
// with each catalog provider and help URL, with the longest alternative
// sentence; and every cause with every alternative, with and without the
// longest provider name and URL a Diagnosis may carry.
func TestMessagesComplete(t *testing.T) {
	providers := []Diagnosis{{}}
	for _, e := range catalogData.entries {
		seen := map[string]bool{}
		for _, u := range []string{"", e.Help.AppPassword, e.Help.EnableIMAP, e.Help.OAuth, e.Help.WebLogin, e.Help.Password, e.Help.General} {
			if !seen[u] {
				seen[u] = true
				providers = append(providers, Diagnosis{Provider: e.ID, ProviderName: e.Name, HelpURL: u})
			}
		}
	}
	longest := Diagnosis{ProviderName: strings.Repeat("N", maxProviderName), HelpURL: "https://" + strings.Repeat("u", maxHelpURL-8)}
	for _, lang := range Languages() {
		cat := messageCatalogs[lang]
		var longAlt Cause
		for _, c := range Causes() {
			if utf8.RuneCountInString(cat.alternatives[string(c)]) > utf8.RuneCountInString(cat.alternatives[string(longAlt)]) {
				longAlt = c
			}
		}
		check := func(d Diagnosis) {
			msg := Message(d, lang)
			checkMessage(t, lang, d, msg)
			if alt := cat.alternative(d); alt != "" && !strings.Contains(msg, alt) {
				t.Errorf("%s %s (alternative %s): the alternative is not mentioned: %s", lang, d.Cause, d.Alternative, msg)
			}
			checkLinks(t, lang, d, msg)
		}
		for _, cause := range Causes() {
			for _, proxied := range []bool{false, true} {
				for _, p := range providers {
					for _, alt := range []Cause{"", longAlt, CauseCredentialsRejected} {
						for _, conf := range []Confidence{High, Medium} {
							d := p
							d.Cause, d.Alternative, d.Confidence, d.Proxied = cause, alt, conf, proxied
							check(d)
						}
					}
				}
				for _, alt := range Causes() {
					for _, p := range []Diagnosis{{}, longest} {
						d := p
						d.Cause, d.Alternative, d.Proxied = cause, alt, proxied
						check(d)
					}
				}
			}
		}
	}
}

func TestMessageUsesProviderAndURL(t *testing.T) {
	d := Diagnosis{Cause: CauseProviderAppPasswordRequired, Provider: "gmail", ProviderName: "Gmail", HelpURL: "https://myaccount.google.com/apppasswords"}
	for _, lang := range Languages() {
		msg := Message(d, lang)
		if !strings.Contains(msg, "Gmail") || !strings.Contains(msg, d.HelpURL) {
			t.Errorf("%s: %s", lang, msg)
		}
	}
	d = Diagnosis{Cause: CauseProviderOAuthRequired, Provider: "docomo", ProviderName: "docomo mail"}
	if msg := Message(d, "ja"); !strings.Contains(msg, "ドコモメール") {
		t.Errorf("ja: the Japanese name is not used: %s", msg)
	}
	if msg := Message(d, "en"); !strings.Contains(msg, "docomo mail") {
		t.Errorf("en: %s", msg)
	}
}

func TestMessageLanguages(t *testing.T) {
	d := Diagnosis{Cause: CauseCredentialsRejected}
	en, ja := Message(d, "en"), Message(d, "ja")
	if en == ja {
		t.Fatal("en and ja are the same")
	}
	for tag, want := range map[string]string{"": en, "fr": en, "EN-us": en, "i-default": en, "ja": ja, "ja-JP": ja, "JA_jp": ja} {
		if got := Message(d, tag); got != want {
			t.Errorf("Message(%q) = %s", tag, got)
		}
	}
	if got := Message(Diagnosis{Cause: "no.such"}, "en"); got != en {
		t.Errorf("unknown cause: %s", got)
	}
}

// TestMessageSanitises: the placeholders cannot inject lines, control
// characters, placeholders or non-https links.
func TestMessageSanitises(t *testing.T) {
	cases := []Diagnosis{
		{Cause: CauseProviderAppPasswordRequired, ProviderName: "Evil\r\n* BYE {help_url}", HelpURL: "https://x.example/\r\nA1 OK"},
		{Cause: CauseProviderAppPasswordRequired, ProviderName: "Good", HelpURL: "javascript:alert(1)"},
		{Cause: CauseProviderAppPasswordRequired, ProviderName: "Good", HelpURL: "http://x.example/"},
		{Cause: CauseProviderAppPasswordRequired, ProviderName: "ドコモ", HelpURL: "https://x.example/ü"},
		{Cause: CauseProviderAppPasswordRequired, ProviderName: strings.Repeat("x", 300)},
	}
	for _, d := range cases {
		for _, lang := range Languages() {
			msg := Message(d, lang)
			checkMessage(t, lang, d, msg)
			for _, bad := range []string{"javascript", "http://", "Evil", "A1 OK", "ü", "xxxxx"} {
				if strings.Contains(msg, bad) {
					t.Errorf("%s: %q got through: %s", lang, bad, msg)
				}
			}
		}
	}
	// Server software is not named: users do not know it.
	if msg := Message(Diagnosis{Cause: CauseUsernameMissingDomain, Provider: "dovecot", ProviderName: "Dovecot"}, "en"); strings.Contains(msg, "Dovecot") {
		t.Errorf("software named: %s", msg)
	}
}

// TestMessageHidesServerDetails: host names and the server's own text stay
// in Detail, out of the message.
func TestMessageHidesServerDetails(t *testing.T) {
	o := refused(dovecotGreeting, no("ALERT", "Account bob@example.com does not exist on backend-7.internal.example"), plainUser)
	o.Host = "imap.internal.example"
	d := Classify(o)
	for _, lang := range Languages() {
		msg := Message(d, lang)
		for _, bad := range []string{"internal", "backend", "does not exist", "bob@"} {
			if strings.Contains(msg, bad) {
				t.Errorf("%s: %q in message: %s", lang, bad, msg)
			}
		}
	}
}

func TestLoadMessagesRejects(t *testing.T) {
	data, err := messageFiles.ReadFile("messages/en.yaml")
	if err != nil {
		t.Fatal(err)
	}
	en := string(data)
	if _, err := loadMessages("en", data); err != nil {
		t.Fatalf("en.yaml: %v", err)
	}
	const line = `    - "No password was entered. Enter your password in the mail app's account settings."`
	if !strings.Contains(en, line) {
		t.Fatal("test needs the password.empty line of en.yaml")
	}
	cases := map[string]string{
		"missing cause":       strings.Replace(en, "  password.empty:\n"+line+"\n", "", 1),
		"unknown placeholder": strings.Replace(en, line, `    - "No {password} was entered."`, 1),
		"non-ASCII":           strings.Replace(en, line, `    - "No password was entered…"`, 1),
		"control character":   strings.Replace(en, line, `    - "No password\nwas entered."`, 1),
		"placeholder last":    strings.Replace(en, line, `    - "{provider} got no password."`, 1),
		"unknown cause":       en + "\n  no.such: \"x\"\n",
		"no proxied wording":  regexp.MustCompile(`(?m)^  upstream\.refused~proxied:\n    - .*\n`).ReplaceAllString(en, ""),
		"unknown key":         en + "\nextra: 1\n",
	}
	for name, doc := range cases {
		if _, err := loadMessages("en", []byte(doc)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// checkLinks: every link in a message ends at a space or the end of the
// text, so that no following word (Japanese has no spaces) becomes part
// of it.
func checkLinks(t *testing.T, lang string, d Diagnosis, msg string) {
	t.Helper()
	if d.HelpURL == "" {
		return
	}
	for rest := msg; ; {
		i := strings.Index(rest, d.HelpURL)
		if i < 0 {
			return
		}
		rest = rest[i+len(d.HelpURL):]
		if rest != "" && rest[0] != ' ' {
			t.Errorf("%s %s/%s: the link runs into %.12q: %s", lang, d.Cause, d.Alternative, rest, msg)
			return
		}
	}
}

// TestMessageLinkSetOff: docomo's link ends its sentence; the alternative
// that follows must not run into it.
func TestMessageLinkSetOff(t *testing.T) {
	d := Classify(withHost(refused("", no("AUTHENTICATIONFAILED", "Authentication failed."), Facts("taro@docomo.ne.jp", "dpassword-long")), "imap.spmode.ne.jp"))
	if d.Cause != CauseProviderAppPasswordRequired || d.HelpURL == "" || d.Alternative == "" {
		t.Fatalf("docomo refusal: %+v", d)
	}
	msg := Message(d, "ja")
	i := strings.Index(msg, d.HelpURL)
	if i < 0 {
		t.Fatalf("no link: %s", msg)
	}
	if after := msg[i+len(d.HelpURL):]; after != "" && after[0] != ' ' {
		t.Errorf("the next sentence runs into the link: %s", msg)
	}
}

// TestMessageAlternativeNotRepeated: the checklist of credentials.rejected
// already says "use your whole email address"; the alternative for a
// user name without domain must not say it again.
func TestMessageAlternativeNotRepeated(t *testing.T) {
	d := Classify(refused("", no("", "Login failed."), Facts("bob", "secret")))
	if d.Cause != CauseCredentialsRejected || d.Alternative != CauseUsernameMissingDomain {
		t.Fatalf("%+v", d)
	}
	for lang, word := range map[string]string{"en": "email address", "ja": "メールアドレス全体"} {
		if msg := Message(d, lang); strings.Count(msg, word) != 1 {
			t.Errorf("%s: %q said %d times: %s", lang, word, strings.Count(msg, word), msg)
		}
	}
}

// TestMessageFitsProvider: hints fit the provider. docomo has an IMAP-only
// password, no app passwords; Gmail's "Invalid credentials" also means no
// 2-Step Verification (corpus: no app password can exist then).
func TestMessageFitsProvider(t *testing.T) {
	docomo := Classify(withHost(refused("", no("", "Login failed."), Facts("taro@docomo.ne.jp", "Ab3$efgh9!")), "imap.spmode.ne.jp"))
	for _, lang := range Languages() {
		msg := Message(docomo, lang)
		if strings.Contains(msg, "app password") || strings.Contains(msg, "アプリパスワード") || strings.Contains(msg, "2-step") {
			t.Errorf("docomo %s (%s): names app passwords: %s", lang, docomo.Cause, msg)
		}
		if !strings.Contains(msg, "IMAP") {
			t.Errorf("docomo %s (%s): does not name the IMAP password: %s", lang, docomo.Cause, msg)
		}
	}
	gmail := Classify(refused(gmailGreeting, no("AUTHENTICATIONFAILED", "Invalid credentials (Failure)"), Facts("bob@gmail.com", "hunter22")))
	if msg := Message(gmail, "en"); !strings.Contains(msg, "2-Step Verification") {
		t.Errorf("Gmail: %s: does not say app passwords need 2-Step Verification: %s", gmail.Cause, msg)
	}
	biglobe := Classify(withHost(refused("", no("", "Login failed."), Facts("taro@biglobe.ne.jp", "secret")), "mail.biglobe.ne.jp"))
	if msg := Message(biglobe, "en"); strings.Contains(msg, "app password") {
		t.Errorf("BIGLOBE has no app passwords: %s", msg)
	}
}

// TestMessageUnsure: a medium or low diagnosis never asserts what was not
// seen: a loose "server error" text does not clear the password.
func TestMessageUnsure(t *testing.T) {
	d := Classify(refused("", no("", "Server error, please try again"), Typed{}))
	if d.Cause != CauseServerTemporaryFailure || d.Confidence == High {
		t.Fatalf("%+v", d)
	}
	for lang, claim := range map[string]string{"en": "not the problem", "ja": "パスワードの問題ではありません"} {
		if msg := Message(d, lang); strings.Contains(msg, claim) {
			t.Errorf("%s: asserts %q at %s confidence: %s", lang, claim, d.Confidence, msg)
		}
	}
}

// TestMessageLocalFailure: when this computer could not open the
// connection (out of file descriptors), nothing judged the password and
// nothing was heard from the server: the answer says neither that the
// password is wrong nor that the server has a problem.
func TestMessageLocalFailure(t *testing.T) {
	for _, proxied := range []bool{true, false} {
		d := Classify(Observation{Host: "imap.example.com", Port: 993, TLSMode: "implicit", Phase: PhaseDial, NetError: NetLocal,
			Typed: Facts("bob@example.com", "secret"), Proxied: proxied})
		if d.Cause != CauseServerTemporaryFailure || d.Confidence != Low || d.Code != "UNAVAILABLE" || !d.Temporary {
			t.Fatalf("%+v", d)
		}
		for lang, claims := range map[string][]string{
			"en": {"refused", "password is wrong", "has a temporary problem", "not the problem", "did not answer"},
			"ja": {"拒否", "一時的な問題が起きています", "パスワードの問題ではありません", "応答しませんでした"},
		} {
			msg := Message(d, lang)
			for _, claim := range claims {
				if strings.Contains(msg, claim) {
					t.Errorf("%s (proxied %v): asserts %q: %s", lang, proxied, claim, msg)
				}
			}
		}
	}
}

// TestMessageHeld: when the shield held a password back, the answer is the
// diagnosis of the server's last refusal of it (Gmail wants an app
// password), plus that imapwhy did not send it again; never "the same
// wrong password" for a password that may be right.
func TestMessageHeld(t *testing.T) {
	o := Observation{Phase: PhaseProxy, Host: "imap.gmail.com", Typed: Facts("bob@gmail.com", "my google password"),
		History: History{Known: true, Held: true, RepeatedFailures: 3, HeldCause: string(CauseProviderAppPasswordRequired)}}
	d := Classify(o)
	if d.Cause != CauseProviderAppPasswordRequired || !d.Held {
		t.Fatalf("%+v", d)
	}
	for lang, want := range map[string][]string{
		"en": {"app password", "did not send it again"},
		"ja": {"アプリパスワード", "再送信していません"},
	} {
		msg := Message(d, lang)
		checkSays(t, lang, msg, want)
		if strings.Contains(msg, "wrong password") || strings.Contains(msg, "間違った") {
			t.Errorf("%s: calls the password wrong: %s", lang, msg)
		}
	}
	// Every cause that can be held says so, whatever the provider.
	for _, lang := range Languages() {
		for _, cause := range Causes() {
			for _, p := range []Diagnosis{{}, {Provider: "gmail", ProviderName: "Gmail", HelpURL: "https://myaccount.google.com/apppasswords"}, {ProviderName: strings.Repeat("N", maxProviderName), HelpURL: "https://" + strings.Repeat("u", maxHelpURL-8)}} {
				d := p
				d.Cause, d.Held, d.Confidence = cause, true, Medium
				if msg := Message(d, lang); cause != CauseCredentialsRepeatedFailure && !strings.Contains(msg, messageCatalogs[lang].held) {
					t.Errorf("%s %s: the held sentence does not fit: %s", lang, cause, msg)
				}
			}
		}
	}
}

// TestMessageProxied: through the proxy, a server that cannot be reached is
// imapwhy's upstream, not the mail app's setting: the message says imapwhy
// could not reach it, that the app's settings and password are fine, and
// names the setting to check; `imapwhy check` (not proxied) keeps the
// wording for someone who typed the server.
func TestMessageProxied(t *testing.T) {
	o := Observation{Host: "127.0.0.1", Port: 993, TLSMode: "implicit", Phase: PhaseDial, NetError: NetRefused}
	plain := Classify(o)
	o.Proxied = true
	d := Classify(o)
	if d.Cause != CauseUpstreamRefused || !d.Proxied || plain.Proxied {
		t.Fatalf("proxied %+v, plain %+v", d, plain)
	}
	for lang, want := range map[string][]string{
		"en": {"imapwhy cannot reach the mail server", "nothing answers", "mail app and password are fine", "listeners[].upstream"},
		"ja": {"imapwhyがメールサーバーに接続できません", "ポートで応答がありません", "メールアプリの設定とパスワードは問題ありません", "listeners[].upstream"},
	} {
		msg := Message(d, lang)
		checkSays(t, lang, msg, want)
		if strings.Contains(msg, "your settings") || strings.Contains(msg, "設定されたポート") {
			t.Errorf("%s: blames the mail app's settings: %s", lang, msg)
		}
	}
	if msg := Message(plain, "en"); !strings.Contains(msg, "in your settings") {
		t.Errorf("check's wording changed: %s", msg)
	}
	// `imapwhy check` against imapwhy: the report says its upstream is down;
	// the server check reached (imapwhy) answered fine.
	rep := Classify(Observation{Host: "127.0.0.1", Port: 1993, Phase: PhaseLogin,
		Untagged: []Response{{Status: "OK", Code: ResponseCode, CodeArg: Diagnosis{Cause: CauseUpstreamRefused, Confidence: High}.Report(false)}},
		Reply:    &Response{Tagged: true, Status: "NO", Code: "UNAVAILABLE", Text: "whatever"}})
	if rep.Cause != CauseUpstreamRefused || !rep.Proxied {
		t.Errorf("reported by imapwhy: %+v, want upstream.refused, proxied", rep)
	}
	for _, c := range Causes() {
		if !upstreamSetting(c) {
			continue
		}
		for _, lang := range Languages() {
			p := Message(Diagnosis{Cause: c, Proxied: true, Confidence: High}, lang)
			if p == Message(Diagnosis{Cause: c, Confidence: High}, lang) || !strings.HasPrefix(p, "imapwhy") {
				t.Errorf("%s %s: proxied message %q", lang, c, p)
			}
		}
	}
	// A second cause through the proxy names imapwhy's upstream too.
	alt := Diagnosis{Cause: CauseUpstreamTimeout, Alternative: CauseUpstreamRefused, Confidence: Medium, Proxied: true}
	if msg := Message(alt, "en"); !strings.Contains(msg, "imapwhy's upstream port") && strings.Contains(msg, "Or the port is wrong") {
		t.Errorf("alternative: %s", msg)
	}
}

// checkSays: msg contains every string of want.
func checkSays(t *testing.T, lang, msg string, want []string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("%s: %q missing: %s", lang, w, msg)
		}
	}
}
