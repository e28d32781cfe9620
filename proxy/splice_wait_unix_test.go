//go:build unix

package proxy

import (
	"errors"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

// TestWaitReadable: the wait returns when a Read would, reads nothing,
// and reports what the Read would have reported.
func TestWaitReadable(t *testing.T) {
	cases := []struct {
		name     string
		far      func(far net.Conn)         // what the peer does
		near     func(near *net.TCPConn)    // what happens on our side first
		wantErr  error                      // nil: wait returns nil
		thenRead func(*testing.T, net.Conn) // after a nil wait
	}{
		{
			name: "data",
			far:  func(far net.Conn) { far.Write([]byte("* 1 EXISTS\r\n")) },
			thenRead: func(t *testing.T, c net.Conn) {
				if got := string(readN(t, c, 12)); got != "* 1 EXISTS\r\n" {
					t.Fatalf("read %q after the wait: the wait must not consume", got)
				}
			},
		},
		{
			name:     "end of file",
			far:      func(far net.Conn) { far.Close() },
			thenRead: expectEOF,
		},
		{
			name: "reset",
			far: func(far net.Conn) {
				far.(*net.TCPConn).SetLinger(0)
				far.Close()
			},
			wantErr: syscall.ECONNRESET,
		},
		{
			name:    "closed here",
			near:    func(near *net.TCPConn) { near.Close() },
			wantErr: net.ErrClosed,
		},
		{
			name:    "deadline",
			near:    func(near *net.TCPConn) { near.SetReadDeadline(time.Now().Add(10 * time.Millisecond)) },
			wantErr: os.ErrDeadlineExceeded,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			near, far := tcpPair(t)
			defer near.Close()
			defer far.Close()
			if c.far != nil {
				c.far(far)
			}
			if c.near != nil {
				c.near(near.(*net.TCPConn))
			}
			done := make(chan error, 1)
			go func() { done <- waitReadable(near.(*net.TCPConn)) }()
			var err error
			select {
			case err = <-done:
			case <-time.After(spliceWait):
				t.Fatal("waitReadable did not return")
			}
			if c.wantErr == nil {
				if err != nil {
					t.Fatalf("waitReadable = %v, want nil", err)
				}
				c.thenRead(t, near)
				return
			}
			if !errors.Is(err, c.wantErr) {
				t.Fatalf("waitReadable = %v, want %v", err, c.wantErr)
			}
		})
	}
}
