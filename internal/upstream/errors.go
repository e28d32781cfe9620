package upstream

// Errors of the upstream login and the typed connection facts derived from
// them. Facts come from typed errors (errors.Is / errors.As), never from
// error strings.

import (
	"context"
	"errors"
	"net"
	"os"
	"syscall"

	"github.com/imapwhy/imapwhy/diagnose"
)

// Error is a failed upstream login: the phase it failed in and why.
// It never holds the password.
type Error struct {
	Phase diagnose.Phase
	Err   error
}

func (e *Error) Error() string { return "upstream " + string(e.Phase) + ": " + e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// StatusError is the server saying no: a tagged NO or BAD, or a BYE.
// Its message leaves out the server's text (a server may quote the command
// back); the text is in the Observation.
type StatusError struct {
	Resp diagnose.Response
}

func (e *StatusError) Error() string {
	s := "server answered " + e.Resp.Status
	if e.Resp.Code != "" {
		s += " [" + e.Resp.Code + "]"
	}
	return s
}

// ProtocolError is the server breaking IMAP, or not speaking it.
type ProtocolError struct {
	what string
}

func (e *ProtocolError) Error() string { return "server broke the protocol: " + e.what }

var (
	ErrUnsafeCredentials = errors.New("contains CR, LF or NUL")
	ErrNoStartTLS        = errors.New("the server does not offer STARTTLS")
	ErrNoMechanism       = errors.New("the server offers no password login the proxy can use")
	ErrPlainToTLS        = errors.New("no plaintext greeting, and the port completes a TLS handshake")
	ErrStartTLSInjection = &ProtocolError{what: "data after the STARTTLS OK (command injection)"}
	ErrPreauth           = &ProtocolError{what: "PREAUTH greeting: logged in before any credentials"}
)

// NetErrorOf derives the connection fact from err, the error of the
// given phase: diagnose.NetErrorOf for the typed errors it knows (shared with
// `imapwhy check`), then what only the upstream client knows: its own
// protocol errors, a handshake failure of no known kind, and any other
// connection failure of no known kind (NetOther). Facts from the
// Observation's own checks (NetPlainToTLS, STARTTLS injection...) are set
// where they are seen, not here.
func NetErrorOf(err error, phase diagnose.Phase) diagnose.NetError {
	if n := diagnose.NetErrorOf(err); n != diagnose.NetOK || errors.Is(err, context.Canceled) {
		return n // NetOK after context.Canceled: our caller gave up
	}
	if _, ok := errors.AsType[*ProtocolError](err); ok {
		return diagnose.NetProtocol
	}
	if phase == diagnose.PhaseTLS {
		return diagnose.NetTLSOther
	}
	if connectionFailure(err) {
		return diagnose.NetOther
	}
	return diagnose.NetOK
}

// connectionFailure: err is the operating system's or the net package's
// (a system call's errno, a net.Error), not a reply of the server nor one
// of this package's own findings. Such a failure of no known kind says
// nothing about the credentials.
func connectionFailure(err error) bool {
	if _, ok := errors.AsType[syscall.Errno](err); ok {
		return true
	}
	if _, ok := errors.AsType[*os.SyscallError](err); ok {
		return true
	}
	_, ok := errors.AsType[net.Error](err)
	return ok
}
