package diagnose

import (
	"regexp"
	"strings"
	"testing"
)

// TestCatalogValid parses the embedded catalog again and checks what the
// loader cannot: the entries the issue asks for are there, and notes and
// sources say something.
func TestCatalogValid(t *testing.T) {
	c, err := loadCatalog(providersYAML)
	if err != nil {
		t.Fatalf("embedded catalog: %v", err)
	}
	required := []string{
		"gmail", "google_workspace", "microsoft365", "outlook", "yahoo", "aol", "icloud", "fastmail", "zoho",
		"gmx", "webde", "yandex", "mailru", "docomo", "au", "softbank", "yahoo_japan", "ocn", "biglobe",
		"sonet", "nifty", "sakura", "xserver",
		"exchange", "dovecot", "cyrus", "courier", "zimbra", "hmailserver", "stalwart", "nginx",
	}
	for _, id := range required {
		if c.ids[id] == nil {
			t.Errorf("missing provider %s", id)
		}
	}
	corpusRef := regexp.MustCompile(`^corpus (#\d|README)`)
	for _, e := range c.entries {
		for _, s := range e.Sources {
			if strings.HasPrefix(s, "corpus") && !corpusRef.MatchString(s) {
				t.Errorf("%s: source %q: want 'corpus #N' or 'corpus README'", e.ID, s)
			}
		}
		if e.Kind == KindProvider && e.IMAP.Host == "" && e.Unconfirmed["imap"] == "" {
			t.Errorf("%s: no IMAP server and no note why", e.ID)
		}
		if e.AppPasswords == AppPasswordsRequired && e.Help.AppPassword == "" && e.primary().Help.AppPassword == "" {
			t.Logf("%s: requires app passwords but names no page to make one", e.ID)
		}
	}
	// Japanese providers whose facts all come from help pages say so.
	for _, id := range []string{"docomo", "au", "softbank", "yahoo_japan", "ocn", "sonet", "nifty", "sakura", "xserver"} {
		if len(c.ids[id].Unconfirmed) == 0 {
			t.Errorf("%s: facts from help pages only, but no unconfirmed note", id)
		}
	}
}

func TestLoadCatalogRejects(t *testing.T) {
	const imap = "    imap: {host: imap.x.example, port: 993, tls: implicit}\n"
	base := "providers:\n  - id: x\n    name: X\n    kind: provider\n    domains: [x.example]\n" + imap + "    sources: [s]\n"
	if _, err := loadCatalog([]byte(base)); err != nil {
		t.Fatalf("minimal catalog: %v", err)
	}
	cases := map[string]string{
		"unknown key":        base + "    colour: red\n",
		"bad id":             strings.Replace(base, "id: x", "id: X-1", 1),
		"no sources":         strings.Replace(base, "    sources: [s]\n", "", 1),
		"bad kind":           strings.Replace(base, "kind: provider", "kind: isp", 1),
		"non-ASCII name":     strings.Replace(base, "name: X", "name: ドコモ", 1),
		"bad domain":         strings.Replace(base, "x.example", "not a domain", 1),
		"bad regexp":         base + "    greeting: ['(']\n",
		"unanchored shape":   base + "    app_passwords: required\n    app_password_shape: '[a-z]{16}'\n",
		"shape without apps": base + "    app_password_shape: '^[a-z]{16}$'\n",
		"bad app_passwords":  base + "    app_passwords: sometimes\n",
		"bad username":       base + "    username: email\n",
		"http help URL":      base + "    help: {general: 'http://x.example/help'}\n",
		"long help URL":      base + "    help: {general: 'https://x.example/" + strings.Repeat("a", 100) + "'}\n",
		"unknown cause":      base + "    texts: [{match: 'x', cause: password.wrong}]\n",
		"bad confidence":     base + "    texts: [{match: 'x', cause: account.locked, confidence: sure}]\n",
		"server, bad port":   strings.Replace(base, "port: 993", "port: 0", 1),
		"server, bad tls":    strings.Replace(base, "tls: implicit", "tls: ssl", 1),
		"no server, no note": strings.Replace(base, imap, "", 1),
		"smtp, bad port":     base + "    smtp: {host: smtp.x.example, port: 0, tls: implicit}\n",
		"smtp, bad tls":      base + "    smtp: {host: smtp.x.example, port: 465, tls: ssl}\n",
		"smtp without host":  base + "    smtp: {port: 465, tls: implicit}\n",
		"unknown note":       base + "    unconfirmed: {colour: guess}\n",
		"duplicate id":       base + strings.TrimPrefix(strings.Replace(base, "x.example", "y.example", 1), "providers:\n"),
		"duplicate domain":   base + strings.TrimPrefix(strings.Replace(base, "id: x", "id: y", 1), "providers:\n"),
		"no such sibling":    base + "    shares_servers_with: nobody\n",
		"passwords refused but app passwords required": base + "    accepts_passwords: false\n    app_passwords: required\n",
	}
	for name, doc := range cases {
		if _, err := loadCatalog([]byte(doc)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestLookupDomain(t *testing.T) {
	cases := []struct {
		domain, id, host string
		port             int
	}{
		{"gmail.com", "gmail", "imap.gmail.com", 993},
		{"GoogleMail.COM", "gmail", "imap.gmail.com", 993},
		{"outlook.com", "outlook", "outlook.office365.com", 993},
		{"hotmail.com", "outlook", "outlook.office365.com", 993},
		{"live.com", "outlook", "outlook.office365.com", 993},
		{"yahoo.com", "yahoo", "imap.mail.yahoo.com", 993},
		{"aol.com", "aol", "imap.aol.com", 993},
		{"icloud.com", "icloud", "imap.mail.me.com", 993},
		{"me.com", "icloud", "imap.mail.me.com", 993},
		{"mac.com", "icloud", "imap.mail.me.com", 993},
		{"fastmail.com", "fastmail", "imap.fastmail.com", 993},
		{"zoho.com", "zoho", "imap.zoho.com", 993},
		{"gmx.de", "gmx", "imap.gmx.net", 993},
		{"gmx.net", "gmx", "imap.gmx.net", 993},
		{"web.de", "webde", "imap.web.de", 993},
		{"yandex.ru", "yandex", "imap.yandex.com", 993},
		{"mail.ru", "mailru", "imap.mail.ru", 993},
		{"docomo.ne.jp", "docomo", "imap.spmode.ne.jp", 993},
		{"i.softbank.jp", "softbank", "imap.softbank.jp", 993},
		{"yahoo.co.jp", "yahoo_japan", "imap.mail.yahoo.co.jp", 993},
		{"ezweb.ne.jp", "au", "", 0},
		{"xy.ocn.ne.jp", "ocn", "imap.ocn.ne.jp", 993},
		{"example.sakura.ne.jp", "sakura", "example.sakura.ne.jp", 993},
		{"nifty.com.", "nifty", "imap.nifty.com", 993},
	}
	for _, tc := range cases {
		p, ok := LookupDomain(tc.domain)
		if !ok || p.ID != tc.id || p.IMAP.Host != tc.host || p.IMAP.Port != tc.port {
			t.Errorf("LookupDomain(%q) = %s %+v %v, want %s %s:%d", tc.domain, p.ID, p.IMAP, ok, tc.id, tc.host, tc.port)
		}
		if ok && p.IMAP.Host != "" && p.IMAP.TLS != "implicit" {
			t.Errorf("%s: tls %q", tc.domain, p.IMAP.TLS)
		}
	}
	for _, d := range []string{"", "example.com", "notgmail.com", "gmail.com.evil.example", "sakura.ne.jp"} {
		if p, ok := LookupDomain(d); ok {
			t.Errorf("LookupDomain(%q) = %s, want none", d, p.ID)
		}
	}
}

// TestLookupSMTP: the outgoing servers set-up profiles use.
func TestLookupSMTP(t *testing.T) {
	for _, tc := range []struct {
		domain string
		want   ServerInfo
	}{
		{"gmail.com", ServerInfo{"smtp.gmail.com", 465, "implicit"}},
		{"icloud.com", ServerInfo{"smtp.mail.me.com", 587, "starttls"}},
		{"docomo.ne.jp", ServerInfo{"smtp.spmode.ne.jp", 465, "implicit"}},
		{"example.sakura.ne.jp", ServerInfo{"example.sakura.ne.jp", 587, "starttls"}},
		{"ezweb.ne.jp", ServerInfo{}},
	} {
		if p, _ := LookupDomain(tc.domain); p.SMTP != tc.want {
			t.Errorf("LookupDomain(%q).SMTP = %+v, want %+v", tc.domain, p.SMTP, tc.want)
		}
	}
}

func TestGreetingToken(t *testing.T) {
	tok, ok := greetingToken(exoGreeting)
	if !ok || tok != "LO4P123CA0233.GBRP123.PROD.OUTLOOK.COM" {
		t.Errorf("token = %q, %v", tok, ok)
	}
	for _, g := range []string{exchangeGreeting, "* OK [not base64!]", "* OK [QQ==]", ""} {
		if tok, ok := greetingToken(g); ok && strings.HasSuffix(tok, "OUTLOOK.COM") {
			t.Errorf("%q: token %q", g, tok)
		}
	}
}
