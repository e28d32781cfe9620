//go:build linux

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestServeNoCoreDumps: `imapwhy serve` makes no core file (RLIMIT_CORE 0,
// hard limit too) and is not dumpable (its /proc files then belong to root,
// which a test not run as root can see), so a crash or gcore by the same
// user cannot write passwords in flight to disk. It also warns at start
// about a gateway that relays to any email domain.
func TestServeNoCoreDumps(t *testing.T) {
	bin := buildImapwhy(t)
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "imapwhy.yaml")
	cfg := fmt.Sprintf(`state_dir: %s
log: {format: json, level: info}
web: {mode: gateway}
listeners:
  - address: 127.0.0.1:0
    tls: implicit
    upstream: {address: auto}
`, filepath.Join(dir, "state"))
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startServe(t, bin, cfgFile)
	p.expect(`listening on (\S+) \(implicit\)`)
	pid := p.cmd.Process.Pid

	limits, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid))
	if err != nil {
		t.Fatal(err)
	}
	if m := regexp.MustCompile(`(?m)^Max core file size\s+(\S+)\s+(\S+)`).FindSubmatch(limits); m == nil || string(m[1]) != "0" || string(m[2]) != "0" {
		t.Errorf("core file size limit of serve: %q, want 0 0", m)
	}
	if os.Geteuid() != 0 {
		fi, err := os.Stat(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			t.Fatal(err)
		}
		if st := fi.Sys().(*syscall.Stat_t); st.Uid != 0 {
			t.Errorf("/proc/%d/status belongs to uid %d: the process is still dumpable", pid, st.Uid)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(p.stderr.String(), `"event":"config_warning"`) {
		if time.Now().After(deadline) {
			t.Fatalf("no warning about upstream auto without allow_domains; stderr:\n%s", p.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(p.stderr.String(), "discovery.allow_domains") {
		t.Errorf("the warning does not name discovery.allow_domains:\n%s", p.stderr)
	}
}

// TestDisableCoreDumps: what serve calls, checked from inside (a root test
// cannot tell a non-dumpable process by its /proc files).
func TestDisableCoreDumps(t *testing.T) {
	if err := disableCoreDumps(); err != nil {
		t.Fatal(err)
	}
	d, err := unix.PrctlRetInt(unix.PR_GET_DUMPABLE, 0, 0, 0, 0)
	if err != nil || d != 0 {
		t.Errorf("PR_GET_DUMPABLE = %d, %v; want 0", d, err)
	}
	var l unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_CORE, &l); err != nil || l.Cur != 0 || l.Max != 0 {
		t.Errorf("RLIMIT_CORE = %+v, %v; want 0, 0", l, err)
	}
}
