//go:build linux

package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestReadFileUse: the idle test's account of who ran out of descriptors
// counts a process's open files and reads the limit in force.
func TestReadFileUse(t *testing.T) {
	before, err := readFileUse(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		f, err := os.Open(os.DevNull)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
	}
	after, err := readFileUse(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if got := after.Open - before.Open; got != 5 {
		t.Errorf("open files grew by %d after opening 5", got)
	}
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		t.Fatal(err)
	}
	if uint64(after.Limit) != l.Cur {
		t.Errorf("limit %d, getrlimit says %d", after.Limit, l.Cur)
	}
}

// TestIdleStopReport: when a proxy cannot reach the last level, the
// report keeps the rows measured before, shows the sessions held, and
// says whose open-file limit stopped it and what its log said.
func TestIdleStopReport(t *testing.T) {
	logPath := filepath.Join(t.TempDir(), "proxy.log")
	if err := os.WriteFile(logPath, []byte("ok\n{\"error\":\"accept4: too many open files\"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	line, n := firstLogLine(logPath, "too many open files")
	if n != 1 || !strings.Contains(line, "accept4: too many open files") {
		t.Fatalf("firstLogLine = %q, %d", line, n)
	}
	iw := idleResult{
		Target: target{Variant: variantTLS, Path: pathImapwhy},
		Levels: []idleLevel{
			{Asked: 5000, Sessions: 5000, RSS: 150 << 20, PerSession: 30 << 10, Marginal: 30 << 10},
			{Asked: 10000, Sessions: 9993, RSS: 300 << 20, PerSession: 31 << 10, Marginal: 32 << 10},
		},
		Held: 9993, Failed: 7,
		Stop: &idleStop{
			Asked: 10000, Held: 9993, Err: errors.New("NO [AUTHENTICATIONFAILED]"),
			Full:    []namedFileUse{{Who: pathImapwhy, fileUse: fileUse{Pid: 42, Open: 19998, Limit: 20000}}},
			LogLine: line, LogLines: n,
		},
	}
	ng := idleResult{
		Target: target{Variant: variantTLS, Path: pathNginx},
		Levels: []idleLevel{{Asked: 5000, Sessions: 5000}, {Asked: 10000, Sessions: 10000}},
		Files:  []fileUse{{Pid: 1, Open: 10001, Limit: 20000}, {Pid: 2, Open: 10021, Limit: 20000}},
		Held:   10000,
	}
	r := &report{Idle: []idleResult{iw, ng}}
	var b strings.Builder
	r.renderIdle(&b)
	r.renderTargets(&b)
	out := b.String()
	for _, want := range []string{
		"| 5000 | 30.0 | 30.0 | 150 |",
		"| 10000 | 31.0 (at 9993) | 32.0 | 300 |",
		"imapwhy stopped at 9993 of 10000 sessions",
		"imapwhy (pid 42) had 19998 files open of its limit of 20000, two per session",
		"accept4: too many open files",
		"9993 held, 7 failed; stopped at 9993 by imapwhy's open-file limit (19998 open of 20000) | **no** | 10000 held, 0 failed over 2 worker processes |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}
