//go:build linux

package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
)

// The idle test holds thousands of sessions, which Dovecot (a process per
// session) cannot serve on a small machine: its upstream is go-imap's
// in-memory server. It runs in a process of its own, the driver's binary
// started with the hidden first argument memUpstreamCommand, so that its
// sockets (one per session) do not count against the driver's open-file
// limit, which holds the clients' sockets (one per session too): neither
// process needs more than one descriptor per session.

// memUpstreamCommand, as the first argument, makes imapwhy-bench serve
// the in-memory upstream instead of measuring anything.
const memUpstreamCommand = "mem-upstream"

// memUpstreamMain serves the in-memory upstream on the -listen address
// until the process is killed (the driver sends SIGTERM).
func memUpstreamMain(args []string) error {
	fs := flag.NewFlagSet("imapwhy-bench "+memUpstreamCommand, flag.ContinueOnError)
	addr := fs.String("listen", "", "host:port to serve on")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *addr == "" {
		return fmt.Errorf("%s: -listen is required", memUpstreamCommand)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv, err := newMemUpstream()
	if err != nil {
		return err
	}
	return srv.Serve(ln)
}

// newMemUpstream is an IMAP server that knows the benchmark user (with an
// empty INBOX) and accepts plaintext logins.
func newMemUpstream() (*imapserver.Server, error) {
	mem := imapmemserver.New()
	u := imapmemserver.NewUser(benchUser, benchPassword)
	if err := u.Create("INBOX", nil); err != nil {
		return nil, err
	}
	mem.AddUser(u)
	return imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return mem.NewSession(), nil, nil
		},
		Caps:         imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapIdle: {}},
		InsecureAuth: true,
		// Connections reset at the end of the test are not news.
		Logger: log.New(io.Discard, "", 0),
	}), nil
}

// startMemUpstream runs the in-memory upstream as a child process on a
// free port of host; its output goes to dir/mem-upstream.log.
func startMemUpstream(dir, host string) (*child, string, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, "", err
	}
	addr, err := freeAddr(host)
	if err != nil {
		return nil, "", err
	}
	logPath := filepath.Join(dir, "mem-upstream.log")
	c, err := startChild("mem-upstream", logPath, self, memUpstreamCommand, "-listen", addr)
	if err != nil {
		return nil, "", err
	}
	if err := c.waitListening(10*time.Second, addr); err != nil {
		c.stop(time.Second)
		return nil, "", fmt.Errorf("%w (see %s)", err, logPath)
	}
	return c, addr, nil
}
