//go:build linux

package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/imapwhy/imapwhy/internal/testkit"
)

// userHZ is the unit of utime and stime in /proc/<pid>/stat: sysconf
// (_SC_CLK_TCK), which the kernel's ABI fixes at 100 on the architectures
// Go supports on Linux.
const userHZ = 100

// usage is what the kernel accounts to a set of processes.
type usage struct {
	RSS int64         // resident set, bytes (VmRSS)
	CPU time.Duration // user + system time
}

// readUsage sums VmRSS and utime+stime over pids.
func readUsage(pids []int) (usage, error) {
	var u usage
	for _, pid := range pids {
		rss, err := readRSS(pid)
		if err != nil {
			return u, err
		}
		cpu, err := readCPU(pid)
		if err != nil {
			return u, err
		}
		u.RSS += rss
		u.CPU += cpu
	}
	return u, nil
}

// readRSS reads VmRSS from /proc/<pid>/status.
func readRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		v, ok := strings.CutPrefix(line, "VmRSS:")
		if !ok {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/status: VmRSS %q: %w", pid, v, err)
		}
		return kb << 10, nil
	}
	return 0, fmt.Errorf("/proc/%d/status: no VmRSS", pid)
}

// statFields returns the fields of /proc/<pid>/stat after the command
// name: index 0 is field 3 (state) of proc(5).
func statFields(pid int) ([]string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil, err
	}
	// The command name is in parentheses and may contain anything.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return nil, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	return f, nil
}

// readCPU returns utime+stime (fields 14 and 15) of pid, all threads.
func readCPU(pid int) (time.Duration, error) {
	f, err := statFields(pid)
	if err != nil {
		return 0, err
	}
	var ticks int64
	for _, s := range f[11:13] {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
		}
		ticks += v
	}
	return time.Duration(ticks) * time.Second / userHZ, nil
}

// childrenOf returns the processes whose parent is pid.
func childrenOf(pid int) ([]int, error) {
	dirs, err := filepath.Glob("/proc/[0-9]*")
	if err != nil {
		return nil, err
	}
	var kids []int
	for _, d := range dirs {
		p, err := strconv.Atoi(filepath.Base(d))
		if err != nil {
			continue
		}
		f, err := statFields(p)
		if err != nil {
			continue // gone in the meantime
		}
		if f[1] == strconv.Itoa(pid) {
			kids = append(kids, p)
		}
	}
	return kids, nil
}

// child is a server process the driver started: imapwhy or nginx's master.
type child struct {
	name string
	*testkit.Process
}

// startChild starts bin with args, its stdout and stderr going to logPath.
// The kernel ends it if the driver dies first.
func startChild(name, logPath, bin string, args ...string) (*child, error) {
	p, err := testkit.StartProcess(exec.Command(bin, args...), logPath)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return &child{name: name, Process: p}, nil
}

func (c *child) pid() int { return c.Pid() }

// waitListening waits until every address accepts a connection, the
// process exits, or timeout passes.
func (c *child) waitListening(timeout time.Duration, addrs ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var d net.Dialer
	for _, a := range addrs {
		for {
			if c.Exited() {
				return fmt.Errorf("%s exited at start: %v", c.name, c.Err())
			}
			conn, err := d.DialContext(ctx, "tcp", a)
			if err == nil {
				conn.Close()
				break
			}
			if ctx.Err() != nil {
				return fmt.Errorf("%s: nothing listening on %s after %v: %w", c.name, a, timeout, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return nil
}

// stop sends SIGTERM to the process and its children, then SIGKILL if
// it has not exited within grace, and waits for it.
func (c *child) stop(grace time.Duration) error {
	killed, err := c.Stop(grace)
	if err != nil {
		return fmt.Errorf("%s: %w", c.name, err)
	}
	if killed {
		return fmt.Errorf("%s did not exit within %v of SIGTERM; killed", c.name, grace)
	}
	return nil
}

// freeAddr returns host:port with a port that was free on host a moment
// ago: the servers are given fixed addresses so that the driver does not
// depend on the format of their start-up messages.
func freeAddr(host string) (string, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}
