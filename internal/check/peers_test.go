package check

// Test peers: a loopback DNS server, a fake SMTP server, a closed port.

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// peerTimeout bounds every wait of a test peer.
const peerTimeout = 10 * time.Second

// testResolver returns a resolver that asks a DNS server on loopback
// knowing only zone (name -> IPv4 address) and answering NXDOMAIN to
// everything else: real *net.DNSError values without leaving the machine.
func testResolver(t *testing.T, zone map[string]netip.Addr) *net.Resolver {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	srv := &dns.Server{
		PacketConn:        pc,
		NotifyStartedFunc: func() { close(started) },
		Handler:           dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) { answerDNS(w, q, zone) }),
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		srv.ActivateAndServe()
	}()
	select {
	case <-started:
	case <-time.After(peerTimeout):
		t.Fatal("DNS server did not start")
	}
	t.Cleanup(func() {
		srv.Shutdown()
		<-served
	})
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "udp", pc.LocalAddr().String())
		},
	}
}

// answerDNS answers A queries from zone; a known name has no other records;
// an unknown name does not exist.
func answerDNS(w dns.ResponseWriter, q *dns.Msg, zone map[string]netip.Addr) {
	m := new(dns.Msg)
	m.SetReply(q)
	for _, question := range q.Question {
		addr, ok := zone[strings.TrimSuffix(strings.ToLower(question.Name), ".")]
		if !ok {
			m.SetRcode(q, dns.RcodeNameError)
			break
		}
		if question.Qtype == dns.TypeA {
			m.Answer = append(m.Answer, &dns.A{
				Hdr: dns.RR_Header{Name: question.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
				A:   addr.AsSlice(),
			})
		}
	}
	w.WriteMsg(m)
}

// fakeSMTP listens on loopback and greets every connection like an SMTP
// server, then waits for the client to hang up. It returns the address.
func fakeSMTP(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer conn.Close()
				conn.SetDeadline(time.Now().Add(peerTimeout))
				io.WriteString(conn, "220 smtp.example ESMTP\r\n")
				io.Copy(io.Discard, conn)
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	return ln.Addr().String()
}

// fakeIMAP serves a scripted plaintext IMAP server on loopback: the
// greeting, then for each command the lines of script[COMMAND] (upper
// case), "{tag}" replaced by the command's tag; "tag BAD" for others. It
// returns the address.
func fakeIMAP(t *testing.T, greeting string, script map[string][]string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { playIMAP(conn, greeting, script) })
		}
	})
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	return ln.Addr().String()
}

func playIMAP(conn net.Conn, greeting string, script map[string][]string) {
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(peerTimeout))
	io.WriteString(conn, greeting+"\r\n")
	br := bufio.NewReader(conn)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		fields := strings.Fields(line)
		if len(fields) < 2 {
			return
		}
		tag, cmd := fields[0], strings.ToUpper(fields[1])
		reply, ok := script[cmd]
		if !ok {
			reply = []string{"{tag} BAD unknown command"}
		}
		for _, r := range reply {
			io.WriteString(conn, strings.ReplaceAll(r, "{tag}", tag)+"\r\n")
		}
		if cmd == "LOGOUT" {
			return
		}
	}
}

// closedPort returns a loopback address where nothing listens: a port that
// was just bound and released, so a connection is refused.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// writeCAFile writes pem to a file for Options.CAFile.
func writeCAFile(t *testing.T, pem []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(path, pem, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
