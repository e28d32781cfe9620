package proxy

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/pires/go-proxyproto"

	"github.com/imapwhy/imapwhy/internal/config"
	"github.com/imapwhy/imapwhy/internal/metrics"
	"github.com/imapwhy/imapwhy/internal/testkit"
)

// proxyRig is a proxy whose one plaintext listener trusts PROXY headers
// from trusted, in front of an in-memory upstream (alice / alicepass).
func proxyRig(t *testing.T, trusted string) (*rigProxy, *metrics.Metrics) {
	t.Helper()
	up := rigMemUpstream(t, testkit.MemUser{Name: "alice", Password: "alicepass"})
	yaml := fmt.Sprintf(`
state_dir: %s
log: {level: debug}
limits: {failure_delay_base: 10ms, failure_delay_max: 10ms}
listeners:
  - address: 127.0.0.1:0
    tls: none
    proxy_protocol: {trusted: [%s]}
    upstream: {address: %q, tls: none}
`, t.TempDir(), trusted, up)
	cfg, err := config.Parse(strings.NewReader(yaml))
	if err != nil {
		t.Fatalf("config:\n%s\n%v", yaml, err)
	}
	m := metrics.New()
	return startRig(t, cfg, Options{Metrics: m}), m
}

// metricValue is the value of an unlabelled metric as /metrics shows it.
func metricValue(t *testing.T, m *metrics.Metrics, name string) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, l := range strings.Split(rec.Body.String(), "\n") {
		if v, ok := strings.CutPrefix(l, name+" "); ok {
			return v
		}
	}
	return ""
}

// loginThrough sends head, then logs in as alice and returns the greeting
// and the tagged answer.
func loginThrough(t *testing.T, p *rigProxy, from string, head []byte) (greeting, answer string) {
	t.Helper()
	tc := dialRig(t, p.addr, from)
	if len(head) > 0 {
		tc.Send(string(head))
	}
	greeting = tc.Line()
	tc.Send("a1 LOGIN alice alicepass\r\n")
	lines := tc.Until("a1 ")
	tc.Send("a2 LOGOUT\r\n")
	return greeting, lines[len(lines)-1]
}

func proxyHeaderBytes(t *testing.T, version byte, src, dst string) []byte {
	t.Helper()
	s, _ := net.ResolveTCPAddr("tcp", src)
	d, _ := net.ResolveTCPAddr("tcp", dst)
	var b bytes.Buffer
	if _, err := proxyproto.HeaderProxyFromAddrs(version, s, d).WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestProxyHeaderTrusted: a trusted source's v1 and v2 headers name the
// client, in the log and for the limits.
func TestProxyHeaderTrusted(t *testing.T) {
	p, _ := proxyRig(t, "127.0.0.1/32")
	for _, v := range []byte{1, 2} {
		client := fmt.Sprintf("192.0.2.%d:4%d000", v, v)
		head := proxyHeaderBytes(t, v, client, "198.51.100.1:993")
		g, a := loginThrough(t, p, "127.0.0.1", head)
		if !strings.HasPrefix(g, "* OK") || !strings.HasPrefix(a, "a1 OK") {
			t.Fatalf("v%d: greeting %q, answer %q", v, g, a)
		}
		testkit.WaitFor(t, func() bool { return len(p.logs.Events("auth_success")) == int(v) })
		ev := p.logs.Events("auth_success")[v-1]
		if ev["client"] != client || ev["via"] == nil || !strings.HasPrefix(ev["via"].(string), "127.0.0.1:") {
			t.Errorf("v%d: auth_success client %v via %v, want %s via 127.0.0.1", v, ev["client"], ev["via"], client)
		}
	}
}

// TestProxyHeaderUnknown: a header that names no client (v1 UNKNOWN, v2
// LOCAL as in a balancer's health check) is accepted, and the connection
// is the peer's. Neither gets an upstream connection before its login:
// both are what a balancer's health check sends (go-proxyproto reads v1
// UNKNOWN as LOCAL).
func TestProxyHeaderUnknown(t *testing.T) {
	p, m := proxyRig(t, "127.0.0.1/32")
	local := proxyproto.HeaderProxyFromAddrs(2, nil, nil)
	local.Command = proxyproto.LOCAL
	var v2 bytes.Buffer
	if _, err := local.WriteTo(&v2); err != nil {
		t.Fatal(err)
	}
	for i, head := range [][]byte{[]byte("PROXY UNKNOWN\r\n"), v2.Bytes()} {
		g, a := loginThrough(t, p, "127.0.0.1", head)
		if !strings.HasPrefix(g, "* OK") || !strings.HasPrefix(a, "a1 OK") {
			t.Fatalf("%d: greeting %q, answer %q", i, g, a)
		}
		testkit.WaitFor(t, func() bool { return len(p.logs.Events("auth_success")) == i+1 })
		ev := p.logs.Events("auth_success")[i]
		if c, _ := ev["client"].(string); !strings.HasPrefix(c, "127.0.0.1:") || ev["via"] != nil {
			t.Errorf("%d: client %v via %v, want the peer", i, ev["client"], ev["via"])
		}
	}
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	got := testkit.ParseMetrics(t, rec.Body.String())
	if used, dials := got[`imapwhy_upstream_predials_total{outcome="used"}`], got["imapwhy_upstream_dial_seconds_count"]; used != 0 || dials != 2 {
		t.Errorf("%v logins on a pre-dialled connection in %v dials, want none in 2", used, dials)
	}
}

// TestProxyHeaderRequired: a trusted source without a header, or with a
// broken one, is refused with a log line and never greeted.
func TestProxyHeaderRequired(t *testing.T) {
	p, m := proxyRig(t, "127.0.0.0/8")
	for i, head := range []string{
		"a1 LOGIN alice alicepass\r\n",
		"PROXY TCP4 192.0.2.1 nonsense\r\n",
		"PROXY TCP4 192.0.2.1 127.0.0.1 1 2" + strings.Repeat(" ", 120) + "\r\n",
		"\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x01x",
	} {
		tc := dialRig(t, p.addr, "127.0.0.1")
		tc.Send(head)
		got, err := io.ReadAll(tc.Reader)
		if len(got) != 0 {
			t.Errorf("%d: a trusted source without a valid header was answered %q (%v)", i, got, err)
		}
		testkit.WaitFor(t, func() bool { return len(p.logs.Events("proxy_header_refused")) == i+1 })
	}
	if got := metricValue(t, m, "imapwhy_proxy_header_refused_total"); got != "4" {
		t.Errorf("imapwhy_proxy_header_refused_total %s, want 4", got)
	}
	if strings.Contains(p.logs.String(), "alicepass") {
		t.Error("the password reached the log")
	}
}

// TestProxyHeaderUntrusted: a header from a source not trusted is not
// believed: the connection is the TCP peer's and the header a bad command.
func TestProxyHeaderUntrusted(t *testing.T) {
	p, _ := proxyRig(t, "127.0.0.2/32")
	head := proxyHeaderBytes(t, 1, "192.0.2.9:4000", "198.51.100.1:993")
	tc := dialRig(t, p.addr, "127.0.0.1")
	if g := tc.Line(); !strings.HasPrefix(g, "* OK") {
		t.Fatalf("greeting %q", g)
	}
	tc.Send(string(head))
	if l := tc.Line(); !strings.Contains(l, "BAD") {
		t.Errorf("a spoofed header was answered %q, want BAD", l)
	}
	tc.Send("a1 LOGIN alice alicepass\r\n")
	if l := tc.Until("a1 "); !strings.HasPrefix(l[len(l)-1], "a1 OK") {
		t.Fatalf("login: %q", l)
	}
	testkit.WaitFor(t, func() bool { return len(p.logs.Events("auth_success")) == 1 })
	ev := p.logs.Events("auth_success")[0]
	if c, _ := ev["client"].(string); !strings.HasPrefix(c, "127.0.0.1:") || ev["via"] != nil {
		t.Errorf("client %v via %v, want the TCP peer 127.0.0.1", ev["client"], ev["via"])
	}
}

// TestReadProxyHeaderExact: the header is read to its last byte and not
// one further, whatever follows it in the same segment.
func TestReadProxyHeaderExact(t *testing.T) {
	for _, v := range []byte{1, 2} {
		head := proxyHeaderBytes(t, v, "[2001:db8::1]:1234", "[2001:db8::2]:993")
		r := bufio.NewReader(io.MultiReader(bytes.NewReader(head), strings.NewReader("a1 NOOP\r\n")))
		h, err := readProxyHeader(r)
		if err != nil {
			t.Fatalf("v%d: %v", v, err)
		}
		src, _, _ := h.TCPAddrs()
		if src.String() != "[2001:db8::1]:1234" {
			t.Errorf("v%d: source %v", v, src)
		}
		if rest, _ := io.ReadAll(r); string(rest) != "a1 NOOP\r\n" {
			t.Errorf("v%d: left %q after the header", v, rest)
		}
	}
}
