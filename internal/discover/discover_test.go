package discover

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"go.uber.org/goleak"

	"github.com/imapwhy/imapwhy/internal/config"
)

func TestMain(m *testing.M) {
	// Whatever the guard decides, these tests never connect beyond
	// loopback: a broken guard fails its tests instead of probing the
	// network the tests run on.
	connect = func(ctx context.Context, d *net.Dialer, network, address string) (net.Conn, error) {
		ap, err := netip.ParseAddrPort(address)
		if err != nil || !ap.Addr().Unmap().IsLoopback() {
			return nil, fmt.Errorf("test safety net: refusing to connect to %s (not loopback)", address)
		}
		return d.DialContext(ctx, network, address)
	}
	goleak.VerifyTestMain(m)
}

// catalogOf returns a Catalog knowing the given domains.
func catalogOf(known map[string]Result) func(string) (Result, bool) {
	return func(domain string) (Result, bool) {
		r, ok := known[domain]
		return r, ok
	}
}

func TestLookupOrder(t *testing.T) {
	e := newEnv(t, "cat.test", "auto.test", "srv.test", "mx.test", "none.test")
	// Every domain but none.test has every later source too, so each case
	// shows that its source wins over the ones after it.
	for _, d := range []string{"cat.test", "auto.test"} {
		e.serveAutoconfig(d, configFile("imap."+d, "993", "SSL", "%EMAILLOCALPART%"))
	}
	for _, d := range []string{"cat.test", "auto.test", "srv.test"} {
		e.dns.Add("_imaps._tcp."+d, dns.TypeSRV, "0 1 993 srvhost."+d+".")
	}
	for _, d := range []string{"cat.test", "auto.test", "srv.test", "mx.test"} {
		e.dns.Add(d, dns.TypeMX, "10 aspmx.l.google.com.")
	}
	opts := e.options()
	opts.Catalog = catalogOf(map[string]Result{
		"cat.test": {Host: "imap.catalog.test", Port: 993, TLS: config.TLSImplicit, Username: "%EMAILADDRESS%", Provider: "catprov"},
	})
	d := New(opts)

	tests := []struct {
		email string
		want  Result
	}{
		{"alice@cat.test", Result{Host: "imap.catalog.test", Port: 993, TLS: "implicit", Username: "alice@cat.test",
			Source: SourceCatalog, Provider: "catprov", Detail: "built-in catalog"}},
		{"alice@auto.test", Result{Host: "imap.auto.test", Port: 993, TLS: "implicit", Username: "alice",
			Source: SourceAutoconfig, Detail: "autoconfig https://autoconfig.auto.test:" + e.web.port + autoconfigPath}},
		{"alice@srv.test", Result{Host: "srvhost.srv.test", Port: 993, TLS: "implicit",
			Source: SourceSRV, Detail: "SRV _imaps._tcp.srv.test"}},
		{"alice@mx.test", Result{Host: "imap.gmail.com", Port: 993, TLS: "implicit", Username: "alice@mx.test",
			Source: SourceMX, Provider: "gmail", Detail: "MX aspmx.l.google.com"}},
	}
	for _, tc := range tests {
		t.Run(tc.email, func(t *testing.T) {
			if got := mustLookup(t, d, tc.email); got != tc.want {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
	t.Run("catalog uses no network", func(t *testing.T) {
		before, webBefore := e.dns.Count(), e.web.count("", "")
		mustLookup(t, d, "bob@cat.test")
		if e.dns.Count() != before || e.web.count("", "") != webBefore {
			t.Errorf("a catalog answer used the network")
		}
	})
	t.Run("nothing found", func(t *testing.T) {
		_, err := d.Lookup(testContext(t), "alice@none.test")
		if !errors.Is(err, ErrNotFound) || errors.Is(err, ErrPrivateAddress) {
			t.Fatalf("err = %v, want ErrNotFound only", err)
		}
		var nf *NotFoundError
		if !errors.As(err, &nf) || nf.Domain != "none.test" || len(nf.Steps) != 3 {
			t.Fatalf("err = %#v, want a *NotFoundError for none.test with 3 steps", err)
		}
		var dnsErr *net.DNSError
		if !errors.As(nf.Steps[2], &dnsErr) || !dnsErr.IsNotFound {
			t.Errorf("MX step = %v, want a *net.DNSError not-found", nf.Steps[2])
		}
	})
}

func TestCatalogWithoutFixedServer(t *testing.T) {
	e := newEnv(t)
	e.dns.Add("_imaps._tcp.isp.test", dns.TypeSRV, "0 1 993 imap.isp.test.")
	e.dns.Add("gw.test", dns.TypeMX, "10 smtp.google.com.")
	opts := e.options()
	opts.Catalog = catalogOf(map[string]Result{"isp.test": {Provider: "isp"}, "gw.test": {Provider: "isp"}})
	d := New(opts)
	// The catalog knows the provider but not the server: the network is
	// asked, and the catalog's provider is kept unless the answer has one.
	if r := mustLookup(t, d, "alice@isp.test"); r.Source != SourceSRV || r.Host != "imap.isp.test" || r.Provider != "isp" {
		t.Errorf("isp.test: got %+v, want the SRV server with provider isp", r)
	}
	if r := mustLookup(t, d, "alice@gw.test"); r.Source != SourceMX || r.Provider != "gmail" {
		t.Errorf("gw.test: got %+v, want the MX rule's provider", r)
	}
}

func TestDefaultAutoconfigURLs(t *testing.T) {
	got := DefaultAutoconfigURLs("example.com", "alice+tag@example.com")
	want := []string{
		"https://autoconfig.example.com/mail/config-v1.1.xml?emailaddress=alice%2Btag%40example.com",
		"https://example.com/.well-known/autoconfig/mail/config-v1.1.xml",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got %q\nwant %q", got, want)
	}
}

func TestExpandUsername(t *testing.T) {
	a, err := parseAddress("Alice.Smith@Forms.test")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ template, want string }{
		{"%EMAILADDRESS%", "Alice.Smith@Forms.test"},
		{"%EMAILLOCALPART%", "Alice.Smith"},
		{"%EMAILLOCALPART%@%EMAILDOMAIN%", "Alice.Smith@Forms.test"},
		{`CORP\%EMAILLOCALPART%`, `CORP\Alice.Smith`},
		{"  %EMAILLOCALPART%  ", "Alice.Smith"},
		{"shared-login", "shared-login"},
		{"100%", "100%"},
		{"%REALNAME%", ""},
		{"%EMAILLOCALPART%.%UNKNOWN%", ""},
		{"", ""},
		{"a\r\nb", ""},
		{strings.Repeat("x", maxUsername+1), ""},
	}
	for _, tc := range tests {
		if got := expandUsername(tc.template, a); got != tc.want {
			t.Errorf("expandUsername(%q) = %q, want %q", tc.template, got, tc.want)
		}
	}
}

func TestPickIMAPServer(t *testing.T) {
	server := func(typ, host, port, socket string) string {
		return `<incomingServer type="` + typ + `"><hostname>` + host + `</hostname><port>` + port +
			`</port><socketType>` + socket + `</socketType><username>%EMAILADDRESS%</username></incomingServer>`
	}
	file := func(servers ...string) string {
		return `<?xml version="1.0"?><clientConfig version="1.1"><emailProvider id="x">` +
			strings.Join(servers, "") + `</emailProvider></clientConfig>`
	}
	tests := []struct {
		name      string
		body      string
		plaintext bool
		wantHost  string // "" wants an error
		wantPort  int
		wantTLS   string
	}{
		{"SSL beats STARTTLS listed first", file(server("imap", "st.x.test", "143", "STARTTLS"), server("imap", "ssl.x.test", "993", "SSL")),
			false, "ssl.x.test", 993, "implicit"},
		{"STARTTLS beats plain", file(server("imap", "plain.x.test", "143", "plain"), server("imap", "st.x.test", "143", "STARTTLS")),
			false, "st.x.test", 143, "starttls"},
		{"file order between equals", file(server("imap", "one.x.test", "993", "SSL"), server("imap", "two.x.test", "993", "SSL")),
			false, "one.x.test", 993, "implicit"},
		{"plain refused by default", file(server("imap", "plain.x.test", "143", "plain")), false, "", 0, ""},
		{"plain when allowed", file(server("imap", "plain.x.test", "143", "plain")), true, "plain.x.test", 143, "none"},
		{"POP3 only", file(server("pop3", "pop.x.test", "995", "SSL")), false, "", 0, ""},
		{"IMAP after POP3", file(server("pop3", "pop.x.test", "995", "SSL"), server("IMAP", "imap.x.test", "993", "SSL")),
			false, "imap.x.test", 993, "implicit"},
		{"%EMAILDOMAIN% in host name", file(server("imap", "mail.%EMAILDOMAIN%", "993", "SSL")), false, "mail.x.test", 993, "implicit"},
		{"bad host skipped", file(server("imap", "imap x.test", "993", "SSL"), server("imap", "ok.x.test", "143", "STARTTLS")),
			false, "ok.x.test", 143, "starttls"},
		{"bad port skipped", file(server("imap", "big.x.test", "99999", "SSL"), server("imap", "zero.x.test", "0", "SSL")), false, "", 0, ""},
		{"unknown socketType skipped", file(server("imap", "tls.x.test", "993", "TLS-maybe")), false, "", 0, ""},
		{"two providers", `<clientConfig><emailProvider id="a">` + server("imap", "a.x.test", "143", "STARTTLS") +
			`</emailProvider><emailProvider id="b">` + server("imap", "b.x.test", "993", "SSL") + `</emailProvider></clientConfig>`,
			false, "b.x.test", 993, "implicit"},
		{"not XML", "<html><body>hello", false, "", 0, ""},
		{"another root element", `<config><incomingServer type="imap"/></config>`, false, "", 0, ""},
		{"entity defined in a DTD", `<!DOCTYPE c [<!ENTITY h "imap.evil.test">]><clientConfig><emailProvider>` +
			server("imap", "&h;", "993", "SSL") + `</emailProvider></clientConfig>`, false, "", 0, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := pickIMAPServer([]byte(tc.body), "x.test", tc.plaintext)
			if tc.wantHost == "" {
				if err == nil {
					t.Fatalf("got %+v, want an error", r)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.Host != tc.wantHost || r.Port != tc.wantPort || r.TLS != tc.wantTLS || r.Username != "%EMAILADDRESS%" {
				t.Errorf("got %+v, want %s:%d %s", r, tc.wantHost, tc.wantPort, tc.wantTLS)
			}
		})
	}
}

func TestAutoconfigFetch(t *testing.T) {
	domains := []string{"known.test", "wellknown.test", "redir.test", "away.test", "insecure.test", "huge.test", "broken.test"}
	e := newEnv(t, append(domains, "elsewhere.test")...)
	good := configFile("imap.%EMAILDOMAIN%", "993", "SSL", "%EMAILADDRESS%")
	for _, d := range domains {
		e.dns.Add(d, dns.TypeA, "127.0.0.1")
		e.dns.Add("autoconfig."+d, dns.TypeA, "127.0.0.1")
		// Every domain has an MX record so that a refused autoconfig
		// shows as an answer from MX, not as an error.
		e.dns.Add(d, dns.TypeMX, "10 in1-smtp.messagingengine.com.")
	}
	e.dns.Add("elsewhere.test", dns.TypeA, "127.0.0.1")
	e.web.set("autoconfig.known.test", autoconfigPath, page{body: good})
	e.web.set("wellknown.test", wellKnownPath, page{body: good})
	e.web.set("autoconfig.redir.test", autoconfigPath, page{status: 302, location: "https://redir.test:" + e.web.port + "/moved.xml"})
	e.web.set("redir.test", "/moved.xml", page{body: good})
	e.web.set("autoconfig.away.test", autoconfigPath, page{status: 301, location: "https://elsewhere.test:" + e.web.port + "/x.xml"})
	e.web.set("elsewhere.test", "/x.xml", page{body: configFile("imap.elsewhere.test", "993", "SSL", "")})
	e.web.set("autoconfig.insecure.test", autoconfigPath, page{status: 302, location: "http://insecure.test:" + e.web.port + "/x.xml"})
	e.web.set("autoconfig.huge.test", autoconfigPath, page{body: good + strings.Repeat(" ", maxAutoconfigBody)})
	e.web.set("autoconfig.broken.test", autoconfigPath, page{status: 500, body: good})
	d := New(e.options())

	tests := []struct {
		domain     string
		wantSource string
		wantDetail string // suffix
	}{
		{"known.test", SourceAutoconfig, autoconfigPath},
		{"wellknown.test", SourceAutoconfig, wellKnownPath},
		{"redir.test", SourceAutoconfig, autoconfigPath},
		{"away.test", SourceMX, ""},     // redirect to another domain refused
		{"insecure.test", SourceMX, ""}, // redirect to http refused
		{"huge.test", SourceMX, ""},     // body over the bound
		{"broken.test", SourceMX, ""},   // HTTP 500
	}
	for _, tc := range tests {
		t.Run(tc.domain, func(t *testing.T) {
			r := mustLookup(t, d, "alice@"+tc.domain)
			if r.Source != tc.wantSource || !strings.HasSuffix(r.Detail, tc.wantDetail) {
				t.Fatalf("got %+v, want source %s, detail ending %q", r, tc.wantSource, tc.wantDetail)
			}
			if tc.wantSource == SourceAutoconfig && (r.Host != "imap."+tc.domain || r.Username != "alice@"+tc.domain) {
				t.Errorf("got %+v", r)
			}
		})
	}
	if n := e.web.count("elsewhere.test", "/x.xml"); n != 0 {
		t.Errorf("the other domain's file was fetched %d times", n)
	}
	if n := e.web.count("insecure.test", "/x.xml"); n != 0 {
		t.Errorf("the http URL was fetched %d times", n)
	}
}

func TestAutoconfigOnlyHTTPS(t *testing.T) {
	e := newEnv(t)
	d := New(e.options())
	_, err := d.fetchAutoconfig(testContext(t), "http://autoconfig.plain.test/mail/config-v1.1.xml", "plain.test")
	if err == nil || !strings.Contains(err.Error(), "only https") {
		t.Fatalf("err = %v, want a refusal of http", err)
	}
	if e.dns.Count() != 0 {
		t.Errorf("an http URL was resolved")
	}
}

func TestSRV(t *testing.T) {
	e := newEnv(t)
	e.dns.Add("_imaps._tcp.both.test", dns.TypeSRV, "0 1 993 imaps.both.test.")
	e.dns.Add("_imap._tcp.both.test", dns.TypeSRV, "0 1 143 imap.both.test.")
	e.dns.Add("_imaps._tcp.starttls.test", dns.TypeSRV, "0 0 0 .")
	e.dns.Add("_imap._tcp.starttls.test", dns.TypeSRV, "0 1 143 imap.starttls.test.")
	e.dns.Add("_imap._tcp.only143.test", dns.TypeSRV, "0 1 143 imap.only143.test.")
	e.dns.Add("_imaps._tcp.dot.test", dns.TypeSRV, "0 0 0 .")
	e.dns.Add("_imap._tcp.dot.test", dns.TypeSRV, "0 0 0 .")
	e.dns.Add("_imaps._tcp.prio.test", dns.TypeSRV, "20 1 993 second.prio.test.", "10 1 1993 first.prio.test.")
	e.dns.Add("_imaps._tcp.bad.test", dns.TypeSRV, "0 1 0 noport.bad.test.", "5 1 993 good.bad.test.")
	d := New(e.options())

	tests := []struct {
		domain   string
		wantHost string // "" wants ErrNotFound
		wantPort int
		wantTLS  string
	}{
		{"both.test", "imaps.both.test", 993, "implicit"},
		{"starttls.test", "imap.starttls.test", 143, "starttls"},
		{"only143.test", "imap.only143.test", 143, "starttls"},
		{"dot.test", "", 0, ""},
		{"prio.test", "first.prio.test", 1993, "implicit"},
		{"bad.test", "good.bad.test", 993, "implicit"},
	}
	for _, tc := range tests {
		t.Run(tc.domain, func(t *testing.T) {
			r, err := d.Lookup(testContext(t), "alice@"+tc.domain)
			if tc.wantHost == "" {
				var nf *NotFoundError
				if !errors.As(err, &nf) || !errors.Is(nf.Steps[1], errNotOffered) {
					t.Fatalf("err = %v, want ErrNotFound with SRV not offered", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := Result{Host: tc.wantHost, Port: tc.wantPort, TLS: tc.wantTLS, Source: SourceSRV, Detail: r.Detail}
			if r != want {
				t.Errorf("got %+v, want %+v", r, want)
			}
		})
	}
}

func TestOrderSRV(t *testing.T) {
	srv := func(target string, prio, weight uint16) *net.SRV {
		return &net.SRV{Target: target, Priority: prio, Weight: weight, Port: 993}
	}
	recs := []*net.SRV{srv("c", 20, 5), srv("a0", 10, 0), srv("a1", 10, 1), srv("a3", 10, 3)}
	tests := []struct {
		draw int // what the random source returns
		want string
	}{
		// Weights 1 and 3 in priority 10 (sum 4): draws 0 pick a1, 1-3 pick a3;
		// the zero-weight record comes last in its priority.
		{0, "a1 a3 a0 c"},
		{1, "a3 a1 a0 c"},
		{3, "a3 a1 a0 c"},
	}
	for _, tc := range tests {
		intn := func(n int) int { return min(tc.draw, n-1) }
		var got []string
		for _, r := range orderSRV(recs, intn) {
			got = append(got, r.Target)
		}
		if strings.Join(got, " ") != tc.want {
			t.Errorf("draw %d: got %v, want %s", tc.draw, got, tc.want)
		}
	}
	if recs[0].Target != "c" {
		t.Errorf("orderSRV modified its input")
	}
}

func TestMXRules(t *testing.T) {
	tests := []struct {
		mx       string
		provider string // "" wants no match
		host     string
	}{
		{"smtp.google.com", "gmail", "imap.gmail.com"},
		{"aspmx.l.google.com", "gmail", "imap.gmail.com"},
		{"alt4.aspmx.l.google.com", "gmail", "imap.gmail.com"},
		{"aspmx2.googlemail.com", "gmail", "imap.gmail.com"},
		{"example-com.mail.protection.outlook.com", "microsoft365", "outlook.office365.com"},
		{"example-com.o-v1.mx.microsoft", "microsoft365", "outlook.office365.com"},
		{"mx01.mail.icloud.com", "icloud", "imap.mail.me.com"},
		{"mta5.am0.yahoodns.net", "yahoo", "imap.mail.yahoo.com"},
		{"mx.zoho.com", "zoho", "imappro.zoho.com"},
		{"in1-smtp.messagingengine.com", "fastmail", "imap.fastmail.com"},
		{"evilgoogle.com", "", ""},
		{"google.com.evil.test", "", ""},
		{"outlook.com", "", ""},
		{"mx.example.test", "", ""},
	}
	rules := DefaultMXRules()
	for _, tc := range tests {
		var got *MXRule
		for i := range rules {
			if rules[i].match(tc.mx) {
				got = &rules[i]
				break
			}
		}
		switch {
		case tc.provider == "" && got != nil:
			t.Errorf("%s matched %s, want no match", tc.mx, got.Provider)
		case tc.provider != "" && (got == nil || got.Provider != tc.provider || got.Host != tc.host):
			t.Errorf("%s matched %+v, want %s %s", tc.mx, got, tc.provider, tc.host)
		}
	}
	for _, rule := range rules {
		if rule.Port != 993 || rule.TLS != config.TLSImplicit || rule.Evidence == "" || !validHostname(rule.Host) {
			t.Errorf("rule %+v: want port 993, implicit TLS, a valid host and evidence", rule)
		}
	}
}

func TestMXLookup(t *testing.T) {
	e := newEnv(t)
	// Preference order decides; unknown and null MX hosts are passed over.
	e.dns.Add("pref.test", dns.TypeMX, "30 mx01.mail.icloud.com.", "10 mx.unknown.test.", "20 example-com.mail.protection.outlook.com.")
	e.dns.Add("null.test", dns.TypeMX, "0 .")
	e.dns.Add("other.test", dns.TypeMX, "10 mx.unknown.test.")
	d := New(e.options())

	r := mustLookup(t, d, "alice@pref.test")
	if r.Provider != "microsoft365" || r.Source != SourceMX || r.Detail != "MX example-com.mail.protection.outlook.com" {
		t.Errorf("got %+v, want microsoft365 from the preference-20 MX", r)
	}
	for _, email := range []string{"alice@null.test", "alice@other.test"} {
		var nf *NotFoundError
		if _, err := d.Lookup(testContext(t), email); !errors.As(err, &nf) || !errors.Is(nf.Steps[2], errNoKnownMX) {
			t.Errorf("%s: err = %v, want ErrNotFound with no known MX", email, err)
		}
	}
	t.Run("iCloud user name unknown", func(t *testing.T) {
		e.dns.Add("family.test", dns.TypeMX, "10 mx01.mail.icloud.com.")
		if r := mustLookup(t, d, "jane@family.test"); r.Provider != "icloud" || r.Username != "" {
			t.Errorf("got %+v, want icloud with an unknown user name", r)
		}
	})
}

func TestCache(t *testing.T) {
	e := newEnv(t, "auto.test", "none.test")
	e.serveAutoconfig("auto.test", configFile("imap.auto.test", "993", "SSL", "%EMAILLOCALPART%"))
	opts := e.options()
	opts.TTL, opts.NegativeTTL = time.Hour, 5*time.Minute
	d := New(opts)

	network := func() int { return e.dns.Count() + e.web.count("", "") }

	r := mustLookup(t, d, "alice@auto.test")
	afterFirst := network()
	if r.Username != "alice" || afterFirst == 0 {
		t.Fatalf("first lookup: %+v after %d queries", r, afterFirst)
	}
	t.Run("hit uses no network and resolves the user name per address", func(t *testing.T) {
		if r := mustLookup(t, d, "bob@AUTO.test"); r.Username != "bob" || r.Source != SourceAutoconfig {
			t.Errorf("got %+v, want bob's own user name", r)
		}
		if n := network(); n != afterFirst {
			t.Errorf("a cached lookup made %d requests", n-afterFirst)
		}
	})
	t.Run("expired entry is looked up again", func(t *testing.T) {
		e.clock.Advance(time.Hour)
		mustLookup(t, d, "alice@auto.test")
		if network() == afterFirst {
			t.Errorf("an expired entry was used")
		}
	})
	t.Run("negative entries", func(t *testing.T) {
		_, err := d.Lookup(testContext(t), "alice@none.test")
		before := network()
		_, err2 := d.Lookup(testContext(t), "alice@none.test")
		if !errors.Is(err, ErrNotFound) || err2 != err || network() != before {
			t.Fatalf("second lookup: %v (first %v), %d requests", err2, err, network()-before)
		}
		e.clock.Advance(5*time.Minute - time.Second)
		_, _ = d.Lookup(testContext(t), "alice@none.test")
		if network() != before {
			t.Errorf("a negative entry expired early")
		}
		e.clock.Advance(time.Second)
		_, _ = d.Lookup(testContext(t), "alice@none.test")
		if network() == before {
			t.Errorf("a negative entry was kept past NegativeTTL")
		}
	})
}

func TestCacheTemporaryFailure(t *testing.T) {
	e := newEnv(t)
	e.dns.Fail("_imaps._tcp.flaky.test")
	opts := e.options()
	opts.NegativeTTL = time.Hour
	d := New(opts)
	if _, err := d.Lookup(testContext(t), "alice@flaky.test"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("err = %v, want ErrNotFound", err)
	}
	before := e.dns.Count()
	e.clock.Advance(temporaryTTL)
	_, _ = d.Lookup(testContext(t), "alice@flaky.test")
	if e.dns.Count() == before {
		t.Errorf("a failure caused by SERVFAIL was kept past %v", temporaryTTL)
	}
}

func TestCacheBounded(t *testing.T) {
	e := newEnv(t)
	for _, dom := range []string{"a.test", "b.test", "c.test"} {
		e.dns.Add(dom, dns.TypeMX, "10 smtp.google.com.")
	}
	opts := e.options()
	opts.CacheSize = 2
	d := New(opts)
	for _, dom := range []string{"a.test", "b.test", "c.test"} {
		mustLookup(t, d, "alice@"+dom)
	}
	if n := d.cache.len(); n != 2 {
		t.Errorf("cache holds %d entries, want 2", n)
	}
	before := e.dns.CountOf("a.test", dns.TypeMX)
	mustLookup(t, d, "alice@a.test") // the least recently used, dropped
	if e.dns.CountOf("a.test", dns.TypeMX) == before {
		t.Errorf("the least recently used entry was kept")
	}
	before = e.dns.CountOf("c.test", dns.TypeMX)
	mustLookup(t, d, "alice@c.test")
	if e.dns.CountOf("c.test", dns.TypeMX) != before {
		t.Errorf("a recent entry was dropped")
	}
}

func TestContextEnded(t *testing.T) {
	e := newEnv(t)
	e.dns.Add("ctx.test", dns.TypeMX, "10 smtp.google.com.")
	d := New(e.options())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := d.Lookup(ctx, "alice@ctx.test"); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if d.cache.len() != 0 {
		t.Errorf("an outcome of a cancelled lookup was cached")
	}
	mustLookup(t, d, "alice@ctx.test")
}

func TestConcurrentLookupsShareOneFetch(t *testing.T) {
	e := newEnv(t, "busy.test")
	e.serveAutoconfig("busy.test", configFile("imap.busy.test", "993", "SSL", "%EMAILLOCALPART%"))
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	e.web.setGate(func(r *http.Request) {
		once.Do(func() { close(entered) })
		select {
		case <-release:
		case <-r.Context().Done(): // the test failed and its client gave up
		}
	})
	d := New(e.options())
	ctx := testContext(t)

	// The first request is held until every lookup has started, so the
	// others find the discovery running (or, if they come late, cached):
	// either way there must be one fetch.
	const n = 8
	users := make([]string, n)
	results := make([]Result, n)
	errs := make([]error, n)
	var started, wg sync.WaitGroup
	started.Add(n)
	for i := range n {
		users[i] = "user" + string(rune('a'+i))
		wg.Go(func() {
			started.Done()
			results[i], errs[i] = d.Lookup(ctx, users[i]+"@busy.test")
		})
	}
	select {
	case <-entered:
	case <-ctx.Done():
		t.Fatal("no autoconfig request arrived")
	}
	started.Wait()
	close(release)
	wg.Wait()
	for i := range n {
		if errs[i] != nil || results[i].Username != users[i] {
			t.Errorf("lookup %d: %+v, %v", i, results[i], errs[i])
		}
	}
	if got := e.web.count("autoconfig.busy.test", autoconfigPath); got != 1 {
		t.Errorf("%d lookups made %d fetches, want 1", n, got)
	}
}

func TestWaiterRetriesWhenLeaderGivesUp(t *testing.T) {
	e := newEnv(t, "slow.test")
	e.serveAutoconfig("slow.test", configFile("imap.slow.test", "993", "SSL", ""))
	entered := make(chan struct{})
	var held atomic.Bool
	e.web.setGate(func(r *http.Request) {
		if held.CompareAndSwap(false, true) { // only the leader's request waits, until its client gives up
			close(entered)
			<-r.Context().Done()
		}
	})
	d := New(e.options())
	ctx := testContext(t)
	leaderCtx, cancelLeader := context.WithCancel(ctx)
	leaderErr, waiterErr := make(chan error, 1), make(chan error, 1)
	go func() {
		_, err := d.Lookup(leaderCtx, "lead@slow.test")
		leaderErr <- err
	}()
	select {
	case <-entered:
	case <-ctx.Done():
		t.Fatal("no autoconfig request arrived")
	}
	go func() {
		_, err := d.Lookup(ctx, "wait@slow.test")
		waiterErr <- err
	}()
	cancelLeader()
	if err := <-leaderErr; !errors.Is(err, context.Canceled) {
		t.Errorf("leader: %v, want context.Canceled", err)
	}
	if err := <-waiterErr; err != nil {
		t.Errorf("waiter: %v, want the server", err)
	}
}

func TestAllowDomains(t *testing.T) {
	e := newEnv(t)
	opts := e.options()
	opts.AllowDomains = []string{"Allowed.test", "bücher.test"}
	opts.Catalog = func(domain string) (Result, bool) {
		return Result{Host: "imap." + domain, Port: 993, TLS: config.TLSImplicit}, true
	}
	d := New(opts)
	for _, email := range []string{"alice@allowed.test", "alice@ALLOWED.TEST", "alice@BÜCHER.test", "alice@xn--bcher-kva.test"} {
		if _, err := d.Lookup(testContext(t), email); err != nil {
			t.Errorf("%s: %v", email, err)
		}
	}
	for _, email := range []string{"alice@other.test", "alice@sub.allowed.test"} {
		if _, err := d.Lookup(testContext(t), email); !errors.Is(err, ErrDomainNotAllowed) {
			t.Errorf("%s: err = %v, want ErrDomainNotAllowed", email, err)
		}
	}
	if e.dns.Count() != 0 {
		t.Errorf("a refused domain was looked up")
	}
}

func TestNotAnAddress(t *testing.T) {
	e := newEnv(t)
	d := New(e.options())
	for _, name := range []string{
		"", "   ", "alice", "alice@", "@example.test", "alice@localhost", "alice@.test", "alice@example..test",
		"alice@[127.0.0.1]", "alice@127.0.0.1", "alice@[::1]", "alice@example.123", "alice smith@example.test",
		"alice@exa mple.test", "alice@-bad.test", "alice@bad-.test", "alice@exa_mple.test", "ali\x00ce@example.test",
		strings.Repeat("a", maxLocalPart+1) + "@example.test", "alice@" + strings.Repeat("a", 64) + ".test",
	} {
		if _, err := d.Lookup(testContext(t), name); !errors.Is(err, ErrNotAnAddress) {
			t.Errorf("%q: err = %v, want ErrNotAnAddress", name, err)
		}
	}
	if e.dns.Count() != 0 {
		t.Errorf("something that is not an address was looked up")
	}
}

func TestParseAddress(t *testing.T) {
	tests := []struct{ in, local, domain, ascii string }{
		{" Alice@Example.Test. ", "Alice", "Example.Test", "example.test"},
		{`"a@b"@example.test`, `"a@b"`, "example.test", "example.test"},
		{"jörg@bücher.test", "jörg", "bücher.test", "xn--bcher-kva.test"},
	}
	for _, tc := range tests {
		a, err := parseAddress(tc.in)
		if err != nil || a.local != tc.local || a.domain != tc.domain || a.ascii != tc.ascii {
			t.Errorf("parseAddress(%q) = %+v, %v", tc.in, a, err)
		}
	}
}

func TestForbiddenAddresses(t *testing.T) {
	forbidden := []string{
		"127.0.0.1", "127.1.2.3", "10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.1.1",
		"169.254.169.254", "100.64.0.1", "100.127.255.254", "0.0.0.0", "224.0.0.1", "255.255.255.255",
		"::1", "::", "fe80::1", "fe80::1%lo", "fc00::1", "fd12:3456::1", "ff02::1", "fec0::1",
		"::ffff:10.0.0.1", "::ffff:127.0.0.1", "::ffff:169.254.169.254", "::10.0.0.1",
		"64:ff9b::a00:1", "64:ff9b::7f00:1", "2002:a00:1::1", "64:ff9b:1::1",
	}
	public := []string{"93.184.216.34", "100.63.255.255", "100.128.0.1", "172.32.0.1", "2606:4700::1", "64:ff9b::808:808", "2002:808:808::1"}

	// Vet on IP literals resolves nothing and dials nothing.
	strict, open := NewGuard(nil, false), NewGuard(nil, true)
	ctx := testContext(t)
	for _, s := range forbidden {
		_, err := strict.Vet(ctx, s)
		var fe *ForbiddenAddressError
		if !errors.Is(err, ErrPrivateAddress) || !errors.As(err, &fe) || fe.Reason == "" {
			t.Errorf("%s: err = %v, want ErrPrivateAddress with a reason", s, err)
		}
		if _, err := strict.DialContext(ctx, "tcp", net.JoinHostPort(s, "993")); !errors.Is(err, ErrPrivateAddress) {
			t.Errorf("dial %s: err = %v, want ErrPrivateAddress before any connection", s, err)
		}
		if addrs, err := open.Vet(ctx, s); err != nil || len(addrs) != 1 {
			t.Errorf("%s with AllowPrivate: %v, %v", s, addrs, err)
		}
	}
	for _, s := range public {
		if _, err := strict.Vet(ctx, s); err != nil {
			t.Errorf("%s: %v, want allowed", s, err)
		}
	}
}

func TestGuardControlIsTheLastFence(t *testing.T) {
	g := NewGuard(nil, false)
	if err := g.control(context.Background(), "tcp", "127.0.0.1:993", nil); !errors.Is(err, ErrPrivateAddress) {
		t.Errorf("control(127.0.0.1) = %v, want ErrPrivateAddress", err)
	}
	if err := g.control(context.Background(), "tcp", "93.184.216.34:993", nil); err != nil {
		t.Errorf("control(public) = %v", err)
	}
}

func TestGuardRefusesOtherNetworks(t *testing.T) {
	g := NewGuard(nil, true)
	for _, tc := range []struct{ network, addr string }{
		{"udp", "127.0.0.1:53"}, {"unix", "/tmp/x"}, {"tcp", "127.0.0.1:imaps"}, {"tcp", "127.0.0.1:0"}, {"tcp", "127.0.0.1"},
	} {
		if _, err := g.DialContext(testContext(t), tc.network, tc.addr); err == nil {
			t.Errorf("DialContext(%s, %s) succeeded", tc.network, tc.addr)
		}
	}
}

// publicStandIn makes a guard that treats 127.0.0.2 as a public address:
// tests may only use loopback, so that one address plays the Internet
// while 127.0.0.1 keeps playing a private one.
func publicStandIn(g *Guard) *Guard {
	standIn := netip.MustParseAddr("127.0.0.2")
	g.forbidden = func(a netip.Addr) string {
		if a == standIn {
			return ""
		}
		return forbiddenReason(a)
	}
	return g
}

func TestGuardDefeatsRebinding(t *testing.T) {
	e := newEnv(t)
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	// The first answer looks public, every later one is private: what a
	// rebinding attacker serves to a client that checks, then resolves
	// again to connect.
	e.dns.AnswerWith("rebind.test", dns.TypeA, func(n int) []string {
		if n == 1 {
			return []string{"127.0.0.2"}
		}
		return []string{"127.0.0.1"}
	})
	g := publicStandIn(NewGuard(e.dns.Resolver(), false))
	ctx := testContext(t)

	conn, err := g.DialContext(ctx, "tcp", net.JoinHostPort("rebind.test", port))
	if err != nil {
		t.Fatalf("first dial: %v", err)
	}
	defer conn.Close()
	if got := conn.RemoteAddr().(*net.TCPAddr).AddrPort().Addr(); got != netip.MustParseAddr("127.0.0.2") {
		t.Errorf("dialled %s, want the vetted 127.0.0.2", got)
	}
	if n := e.dns.CountOf("rebind.test", dns.TypeA); n != 1 {
		t.Errorf("one dial resolved the name %d times, want once", n)
	}

	_, err = g.DialContext(ctx, "tcp", net.JoinHostPort("rebind.test", port))
	var fe *ForbiddenAddressError
	if !errors.As(err, &fe) || fe.Addr != netip.MustParseAddr("127.0.0.1") || fe.Host != "rebind.test" {
		t.Errorf("second dial: err = %v, want 127.0.0.1 refused", err)
	}
}

func TestGuardRefusesNamesResolvingToPrivate(t *testing.T) {
	e := newEnv(t)
	e.dns.Add("private.test", dns.TypeA, "10.0.0.1")
	e.dns.Add("mixed.test", dns.TypeA, "127.0.0.2", "192.168.0.1")
	e.dns.Add("mapped.test", dns.TypeAAAA, "::ffff:10.0.0.1")
	e.dns.Add("public.test", dns.TypeA, "127.0.0.2")
	g := publicStandIn(NewGuard(e.dns.Resolver(), false))
	ctx := testContext(t)
	for _, host := range []string{"private.test", "mixed.test", "mapped.test"} {
		if _, err := g.Vet(ctx, host); !errors.Is(err, ErrPrivateAddress) {
			t.Errorf("%s: err = %v, want ErrPrivateAddress", host, err)
		}
		if _, err := g.DialContext(ctx, "tcp", net.JoinHostPort(host, "993")); !errors.Is(err, ErrPrivateAddress) {
			t.Errorf("dial %s: err = %v, want ErrPrivateAddress", host, err)
		}
	}
	if addrs, err := g.Vet(ctx, "public.test"); err != nil || len(addrs) != 1 {
		t.Errorf("public.test: %v, %v", addrs, err)
	}
	if _, err := g.DialContext(ctx, "tcp6", "public.test:993"); err == nil || !strings.Contains(err.Error(), "no tcp6 address") {
		t.Errorf("tcp6 dial of an IPv4-only name: err = %v", err)
	}
	_, err := g.Vet(ctx, "missing.test")
	var dnsErr *net.DNSError
	if !errors.As(err, &dnsErr) || !dnsErr.IsNotFound {
		t.Errorf("missing.test: err = %v, want a *net.DNSError not found", err)
	}
}

func TestAutoconfigOnPrivateAddressRefused(t *testing.T) {
	e := newEnv(t, "priv.test", "fallback.test", "public.test")
	for _, d := range []string{"priv.test", "fallback.test"} {
		e.serveAutoconfig(d, configFile("imap."+d, "993", "SSL", ""))
	}
	e.dns.Add("_imaps._tcp.fallback.test", dns.TypeSRV, "0 1 993 imap.fallback.test.")
	e.dns.Add("autoconfig.public.test", dns.TypeA, "127.0.0.2")
	e.web.set("autoconfig.public.test", autoconfigPath, page{body: configFile("imap.public.test", "993", "SSL", "")})
	opts := e.options()
	opts.AllowPrivate = false
	d := New(opts)
	publicStandIn(d.Guard())

	_, err := d.Lookup(testContext(t), "alice@priv.test")
	var fe *ForbiddenAddressError
	if !errors.Is(err, ErrPrivateAddress) || errors.Is(err, ErrNotFound) || !errors.As(err, &fe) || fe.Host != "autoconfig.priv.test" {
		t.Errorf("priv.test: err = %v, want autoconfig.priv.test refused", err)
	}
	if r := mustLookup(t, d, "alice@fallback.test"); r.Source != SourceSRV {
		t.Errorf("fallback.test: got %+v, want the SRV answer after the refused autoconfig", r)
	}
	if n := e.web.count("", ""); n != 0 {
		t.Errorf("%d requests reached a private address", n)
	}

	// The stand-in public address is reachable: the web server listens on
	// 127.0.0.1 only, so the fetch fails to connect, and that failure (not
	// a refusal) proves the guard let it through.
	_, err = d.Lookup(testContext(t), "alice@public.test")
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("public.test: err = %v, want ErrNotFound after a failed connection", err)
	}
	var nf *NotFoundError
	var opErr *net.OpError
	if !errors.As(err, &nf) || !errors.As(nf.Steps[0], &opErr) || errors.Is(nf.Steps[0], ErrPrivateAddress) {
		t.Errorf("public.test autoconfig step: %v, want a connection error, not a refusal", nf.Steps[0])
	}
}
