package upstream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"testing"

	"github.com/imapwhy/imapwhy/diagnose"
)

// TestNetErrorOf: a connection failure is never NetOK, so that it can
// never be read as the server refusing the credentials; the server's
// replies and this package's own findings are no connection facts.
func TestNetErrorOf(t *testing.T) {
	dial := func(call string, errno syscall.Errno) error {
		return &Error{Phase: diagnose.PhaseDial, Err: &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError(call, errno)}}
	}
	tests := []struct {
		name  string
		err   error
		phase diagnose.Phase
		want  diagnose.NetError
	}{
		{"out of file descriptors", dial("socket", syscall.EMFILE), diagnose.PhaseDial, diagnose.NetLocal},
		{"system out of files", dial("socket", syscall.ENFILE), diagnose.PhaseDial, diagnose.NetLocal},
		{"no buffer space", dial("socket", syscall.ENOBUFS), diagnose.PhaseDial, diagnose.NetLocal},
		{"out of memory", dial("socket", syscall.ENOMEM), diagnose.PhaseDial, diagnose.NetLocal},
		{"out of ephemeral ports", dial("connect", syscall.EADDRNOTAVAIL), diagnose.PhaseDial, diagnose.NetLocal},
		{"refused", dial("connect", syscall.ECONNREFUSED), diagnose.PhaseDial, diagnose.NetRefused},
		{"not permitted", dial("connect", syscall.EPERM), diagnose.PhaseDial, diagnose.NetOther},
		{"bare errno while reading", fmt.Errorf("read: %w", syscall.EIO), diagnose.PhaseLogin, diagnose.NetOther},
		{"closed connection", fmt.Errorf("read: %w", net.ErrClosed), diagnose.PhaseGreeting, diagnose.NetOther},
		{"tls of no known kind", errors.New("tls: handshake failure"), diagnose.PhaseTLS, diagnose.NetTLSOther},
		{"eof", io.EOF, diagnose.PhaseGreeting, diagnose.NetReset},
		{"server broke the protocol", &ProtocolError{what: "garbage"}, diagnose.PhaseGreeting, diagnose.NetProtocol},
		{"server said no", &StatusError{Resp: diagnose.Response{Tagged: true, Status: "NO"}}, diagnose.PhaseLogin, diagnose.NetOK},
		{"no mechanism", ErrNoMechanism, diagnose.PhaseCapability, diagnose.NetOK},
		{"no starttls", ErrNoStartTLS, diagnose.PhaseCapability, diagnose.NetOK},
		{"our own cancel", fmt.Errorf("%w: %w", context.Canceled, dial("socket", syscall.EMFILE)), diagnose.PhaseDial, diagnose.NetOK},
		{"text alone is not a fact", errors.New("socket: too many open files"), diagnose.PhaseDial, diagnose.NetOK},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := NetErrorOf(tc.err, tc.phase); got != tc.want {
				t.Errorf("NetErrorOf(%v, %s) = %q, want %q", tc.err, tc.phase, got, tc.want)
			}
		})
	}
}
