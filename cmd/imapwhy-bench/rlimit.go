//go:build linux

package main

import "syscall"

// raiseFileLimit raises RLIMIT_NOFILE, soft and hard (only root may raise
// the hard limit), to want if it is lower, and returns the soft limit in
// force afterwards. Child processes inherit it.
func raiseFileLimit(want uint64) (uint64, error) {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0, err
	}
	if l.Cur >= want {
		return l.Cur, nil
	}
	n := l
	n.Cur = want
	n.Max = max(l.Max, want)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &n); err != nil {
		// Not root: as far as the hard limit allows.
		n.Cur, n.Max = l.Max, l.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &n); err != nil {
			return l.Cur, err
		}
	}
	return n.Cur, nil
}

// hardFileLimit is the hard RLIMIT_NOFILE: the most any process started
// from here can raise its own limit to without CAP_SYS_RESOURCE.
func hardFileLimit() (uint64, error) {
	var l syscall.Rlimit
	err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l)
	return l.Max, err
}
