//go:build linux

package main

import (
	"context"
	"fmt"
	"log"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imapwhy/imapwhy/internal/dovecottest"
)

// The benchmark user: one of internal/dovecottest's default users, and the
// one the in-process upstream of the idle test knows.
const (
	benchUser     = "alice"
	benchPassword = "alicepass"
)

// harness lets the driver use internal/dovecottest, which is written for
// tests and takes a testing.TB. It implements the methods dovecottest
// calls: Fatal becomes a panic that startDovecot turns into an error,
// cleanups run when the driver calls close. The embedded TB is nil, so
// a method dovecottest might call in the future and harness lacks panics
// loudly instead of doing something wrong.
type harness struct {
	testing.TB

	verbose bool

	mu       sync.Mutex
	cleanups []func()
	failed   bool
}

// fatal carries a Fatal message from dovecottest to startDovecot.
type fatal struct{ msg string }

func (h *harness) Helper()      {}
func (h *harness) Name() string { return "imapwhy-bench" }

func (h *harness) Logf(format string, args ...any) {
	if h.verbose {
		log.Printf(format, args...)
	}
}

func (h *harness) Errorf(format string, args ...any) {
	h.mu.Lock()
	h.failed = true
	h.mu.Unlock()
	log.Printf(format, args...)
}

func (h *harness) Fatal(args ...any) { panic(fatal{fmt.Sprint(args...)}) }

func (h *harness) Fatalf(format string, args ...any) { panic(fatal{fmt.Sprintf(format, args...)}) }

func (h *harness) Failed() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.failed
}

func (h *harness) Cleanup(f func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.cleanups = append(h.cleanups, f)
}

// close runs the cleanups, last registered first, as testing does.
func (h *harness) close() {
	h.mu.Lock()
	fs := h.cleanups
	h.cleanups = nil
	h.mu.Unlock()
	for i := len(fs) - 1; i >= 0; i-- {
		fs[i]()
	}
}

// startDovecot starts a Dovecot with internal/dovecottest's configuration.
func startDovecot(h *harness) (srv *dovecottest.Server, err error) {
	defer func() {
		if r := recover(); r != nil {
			f, ok := r.(fatal)
			if !ok {
				panic(r)
			}
			err = fmt.Errorf("starting dovecot: %s", f.msg)
		}
	}()
	return dovecottest.Start(h, dovecottest.Options{}), nil
}

// fillMailbox APPENDs n messages of size bytes to the benchmark user's
// INBOX, unless it already holds n.
func fillMailbox(ctx context.Context, addr string, n, size int) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	c, err := login(ctx, addr, nil, idleReadBuffer)
	if err != nil {
		return err
	}
	defer c.logout()
	for i := range n {
		msg := message(i, size)
		if err := c.command(fmt.Sprintf("APPEND INBOX {%d+}", len(msg)), msg); err != nil {
			return fmt.Errorf("APPEND message %d: %w", i+1, err)
		}
	}
	return nil
}

// message is message number i: exactly size bytes (size must leave room
// for the headers) of CRLF-terminated text lines, different for every i.
func message(i, size int) []byte {
	var b strings.Builder
	b.Grow(size)
	fmt.Fprintf(&b, "From: Bench <bench@example.test>\r\nTo: %s@example.test\r\n", benchUser)
	fmt.Fprintf(&b, "Subject: message %d\r\nMessage-ID: <bench-%d@example.test>\r\n", i+1, i+1)
	b.WriteString("Date: Mon, 01 Jan 2024 00:00:00 +0000\r\nMIME-Version: 1.0\r\n")
	b.WriteString("Content-Type: text/plain; charset=us-ascii\r\n\r\n")
	// A simple generator: text that does not compress to nothing, and no
	// line that could look like a literal announcement.
	const alphabet = "abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ 0123456789 .,"
	x := uint32(i)*2654435761 + 1
	for rem := size - b.Len(); rem > 0; rem = size - b.Len() {
		n := 76 // text per line; the last line fills the message exactly
		switch {
		case rem <= n+2:
			n = rem - 2
		case rem < n+4:
			n = 70 // leave room for one more line of at least CRLF
		}
		for range n {
			x ^= x << 13
			x ^= x >> 17
			x ^= x << 5
			b.WriteByte(alphabet[x%uint32(len(alphabet))])
		}
		b.WriteString("\r\n")
	}
	return []byte(b.String())
}
