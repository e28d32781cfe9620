package testkit

import (
	"context"
	"errors"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestDNSModes: a table answers its names, names it lacks are NXDOMAIN,
// failing names SERVFAIL, dropped ones time out, and each query counts.
func TestDNSModes(t *testing.T) {
	s := NewDNS(t)
	s.AddIPs("imap.a.test", "127.0.0.1", "::1", "::ffff:127.0.0.2")
	s.Add("_imaps._tcp.a.test", dns.TypeSRV, "0 1 993 imap.a.test.")
	s.Fail("broken.test")
	s.Drop("silent.test")
	r := s.Resolver()
	ctx, cancel := context.WithTimeout(t.Context(), Timeout)
	defer cancel()

	ips, err := r.LookupHost(ctx, "imap.a.test")
	slices.Sort(ips)
	if want := []string{"127.0.0.1", "127.0.0.2", "::1"}; err != nil || !slices.Equal(ips, want) {
		t.Errorf("LookupHost = %v, %v; want %v", ips, err, want)
	}
	if _, srvs, err := r.LookupSRV(ctx, "imaps", "tcp", "a.test"); err != nil || len(srvs) != 1 || srvs[0].Port != 993 {
		t.Errorf("LookupSRV = %v, %v", srvs, err)
	}
	var dnsErr *net.DNSError
	if _, err := r.LookupHost(ctx, "nowhere.test"); !errors.As(err, &dnsErr) || !dnsErr.IsNotFound {
		t.Errorf("unknown name: %v, want not found", err)
	}
	if _, err := r.LookupHost(ctx, "broken.test"); !errors.As(err, &dnsErr) || dnsErr.IsNotFound || dnsErr.IsTimeout {
		t.Errorf("failing name: %v, want a server failure", err)
	}
	short, cancelShort := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancelShort()
	if _, err := r.LookupHost(short, "silent.test"); !errors.As(err, &dnsErr) || !dnsErr.IsTimeout {
		t.Errorf("dropped name: %v, want a timeout", err)
	}
	if n := s.CountOf("imap.a.test", dns.TypeA); n != 1 {
		t.Errorf("A queries for imap.a.test = %d, want 1", n)
	}
}
