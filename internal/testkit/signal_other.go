//go:build !unix

package testkit

import (
	"errors"
	"syscall"
)

const (
	sigTerm = syscall.Signal(15)
	sigKill = syscall.Signal(9)
)

// The servers the rigs start run on Unix only; these keep the package
// compiling elsewhere.

func groupProcAttr() *syscall.SysProcAttr { return nil }

// SignalGroup is not supported outside Unix.
func SignalGroup(int, syscall.Signal) error { return errors.ErrUnsupported }
