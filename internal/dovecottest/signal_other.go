//go:build !unix

package dovecottest

import (
	"errors"
	"syscall"
)

const (
	sigTerm = syscall.Signal(15)
	sigKill = syscall.Signal(9)
)

// Dovecot runs on Unix only; these keep the package compiling elsewhere
// (Start fails there: no dovecot binary).

func sysProcAttr() *syscall.SysProcAttr { return nil }

func signalGroup(int, syscall.Signal) error { return errors.ErrUnsupported }

func processIdentity(int) string { return "" }

func cmdlineMentions(int, string) bool { return false }
