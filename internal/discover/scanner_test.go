package discover

// Discovery must not turn the proxy into a scanner of the operator's own
// network: whatever a domain's DNS says, and however often it
// changes its answer, nothing is dialled that is not public. These tests go
// through a Discoverer as the proxy does (Lookup, then the guard's dial of
// what it found), with a real listener at the private address to prove that
// nothing got there.

import (
	"errors"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/imapwhy/imapwhy/internal/testkit"
)

// countingPair listens on the same port of 127.0.0.2 (the public stand-in)
// and 127.0.0.1 (private), counting the connections of each.
func countingPair(t *testing.T) (port int, public, private *atomic.Int64) {
	t.Helper()
	for range 10 {
		ln, err := net.Listen("tcp", "127.0.0.2:0")
		if err != nil {
			t.Fatal(err)
		}
		port = ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		other, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			continue // taken on 127.0.0.1: try another
		}
		other.Close()
		_, public = testkit.Counting(t, "127.0.0.2:"+strconv.Itoa(port))
		_, private = testkit.Counting(t, "127.0.0.1:"+strconv.Itoa(port))
		return port, public, private
	}
	t.Fatal("no port free on both 127.0.0.1 and 127.0.0.2")
	return 0, nil, nil
}

// TestDiscoveredHostRebinding: a domain's SRV record names a host whose
// address changes from query to query, between the public stand-in
// (127.0.0.2) and private ones. The cached discovery keeps the name, every
// dial resolves it once and dials only what it vetted: the public answers
// are reached, the private ones refused before any connection, whatever
// the order.
func TestDiscoveredHostRebinding(t *testing.T) {
	e := newEnv(t, "flip.test")
	port, public, private := countingPair(t)
	e.dns.Add("_imaps._tcp.flip.test", dns.TypeSRV, "0 1 "+strconv.Itoa(port)+" imap.flip.test.")
	// Only loopback addresses, here and in every test that dials: should
	// the guard ever let a private answer through, the dial must stay on
	// this machine. TestDiscoveredHostNonPublic covers the other ranges
	// with Vet, which dials nothing.
	answers := [][]string{
		{"127.0.0.2"}, {"127.0.0.1"}, {"127.0.0.2"}, {"127.0.0.3"}, {"127.0.0.2", "127.0.0.1"},
		{"127.0.0.2"}, {"127.0.0.1", "127.0.0.2"}, {"127.0.0.2"},
	}
	e.dns.AnswerWith("imap.flip.test", dns.TypeA, func(n int) []string { return answers[(n-1)%len(answers)] })
	opts := e.options()
	opts.AllowPrivate = false
	d := New(opts)
	publicStandIn(d.Guard())
	ctx := testContext(t)

	wantOK := 0
	for i, ans := range answers {
		r, err := d.Lookup(ctx, "alice@flip.test")
		if err != nil {
			t.Fatalf("lookup %d: %v", i+1, err)
		}
		conn, err := d.Guard().DialContext(ctx, "tcp", net.JoinHostPort(r.Host, strconv.Itoa(r.Port)))
		allPublic := len(ans) == 1 && ans[0] == "127.0.0.2"
		switch {
		case allPublic && err != nil:
			t.Errorf("dial %d (DNS said %v): %v", i+1, ans, err)
		case !allPublic && err == nil:
			t.Errorf("dial %d (DNS said %v) connected to %v", i+1, ans, conn.RemoteAddr())
		case !allPublic && !isForbidden(err):
			t.Errorf("dial %d (DNS said %v): %v, want ErrPrivateAddress", i+1, ans, err)
		}
		if err == nil {
			wantOK++
			conn.Close()
		}
	}
	if n := e.dns.CountOf("_imaps._tcp.flip.test", dns.TypeSRV); n != 1 {
		t.Errorf("SRV asked %d times, want once (cached)", n)
	}
	if n := e.dns.CountOf("imap.flip.test", dns.TypeA); n != len(answers) {
		t.Errorf("A asked %d times for %d dials, want once per dial", n, len(answers))
	}
	waitCount(t, public, int64(wantOK))
	if n := private.Load(); n != 0 {
		t.Errorf("the private address got %d connections", n)
	}
}

// TestDiscoveredHostNonPublic: every kind of non-public answer for a
// discovered host, IPv4 and IPv6, is refused by the guard's vetting.
func TestDiscoveredHostNonPublic(t *testing.T) {
	// An answer written with a colon is an AAAA record, else an A record.
	answers := map[string][]string{
		"loopback": {"127.0.0.1"},
		"private":  {"10.1.2.3", "172.16.0.1", "192.168.0.1"},
		"metadata": {"169.254.169.254"},
		"cgnat":    {"100.64.0.1"},
		"zero":     {"0.0.0.0"},
		"mcast":    {"239.255.255.250"},
		"bcast":    {"255.255.255.255"},
		"lo6":      {"::1"},
		"ula":      {"fd00::1"},
		"ll6":      {"fe80::1"},
		"mcast6":   {"ff02::1"},
		"mapped":   {"::ffff:127.0.0.1"},
		"nat64":    {"64:ff9b::a9fe:a9fe"},
		"6to4":     {"2002:c0a8:1::1"},
	}
	var domains []string
	for name := range answers {
		domains = append(domains, name+".test")
	}
	e := newEnv(t, domains...)
	for name, addrs := range answers {
		qtype := dns.TypeA
		if strings.Contains(addrs[0], ":") {
			qtype = dns.TypeAAAA
		}
		e.dns.Add("_imaps._tcp."+name+".test", dns.TypeSRV, "0 1 993 imap."+name+".test.")
		e.dns.Add("imap."+name+".test", qtype, addrs...)
	}
	opts := e.options()
	opts.AllowPrivate = false
	d := New(opts)
	ctx := testContext(t)
	for name, addrs := range answers {
		r, err := d.Lookup(ctx, "alice@"+name+".test")
		if err != nil {
			t.Errorf("%s: lookup: %v", name, err)
			continue
		}
		// Vet only: DialContext vets the same way first, and a test that
		// dialled these addresses would, were the guard ever broken, send
		// packets off this machine.
		if _, err := d.Guard().Vet(ctx, r.Host); !isForbidden(err) {
			t.Errorf("%s (%v): %v, want ErrPrivateAddress", name, addrs, err)
		}
	}
}

func isForbidden(err error) bool {
	var fe *ForbiddenAddressError
	return err != nil && errors.As(err, &fe) && fe.Addr != (netip.Addr{})
}

// waitCount waits until c reaches want (a connection is counted by the
// listener's goroutine, just after the dial returned).
func waitCount(t *testing.T, c *atomic.Int64, want int64) {
	t.Helper()
	ctx := testContext(t)
	for c.Load() < want {
		select {
		case <-ctx.Done():
			t.Fatalf("%d connections counted, want %d", c.Load(), want)
		default:
		}
		time.Sleep(5 * time.Millisecond)
	}
	if n := c.Load(); n != want {
		t.Errorf("%d connections, want %d", n, want)
	}
}
