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

// child is a server process the driver started: imapwhy, nginx's master
// or the idle test's upstream.
type child struct {
	name   string
	errLog string // where it writes its errors
	*testkit.Process
}

// startChild starts bin with args, its stdout and stderr going to logPath.
// The kernel ends it if the driver dies first.
func startChild(name, logPath, bin string, args ...string) (*child, error) {
	p, err := testkit.StartProcess(exec.Command(bin, args...), logPath)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return &child{name: name, errLog: logPath, Process: p}, nil
}

func (c *child) pid() int { return c.Pid() }

func (c *child) errorLog() string { return c.errLog }

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

// fileUse is how many files a process has open and may have open.
type fileUse struct {
	Pid   int
	Open  int
	Limit int // the soft RLIMIT_NOFILE in force
}

// full reports whether the process cannot open the descriptors of one
// more session: it is within slack of its limit.
func (f fileUse) full(slack int) bool { return f.Limit-f.Open < slack }

// readFileUse counts /proc/<pid>/fd and reads the process's open-file
// limit from /proc/<pid>/limits.
func readFileUse(pid int) (fileUse, error) {
	u := fileUse{Pid: pid}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return u, err
	}
	u.Open = len(fds)
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid))
	if err != nil {
		return u, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		rest, ok := strings.CutPrefix(line, "Max open files")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) > 0 {
			if u.Limit, err = strconv.Atoi(f[0]); err != nil {
				return u, fmt.Errorf("/proc/%d/limits: %q: %w", pid, line, err)
			}
			return u, nil
		}
	}
	return u, fmt.Errorf("/proc/%d/limits: no open-file limit", pid)
}

// firstLogLine returns the first line of the file at path that contains
// one of the (lower-case) words, cut to the part around the word, and how
// many lines contain one.
func firstLogLine(path string, words ...string) (first string, n int) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		l := strings.ToLower(line)
		for _, w := range words {
			i := strings.Index(l, w)
			if i < 0 {
				continue
			}
			if n == 0 {
				first = around(line, i, i+len(w), 160)
			}
			n++
			break
		}
	}
	return strings.TrimSpace(first), n
}

// around is line cut to at most about limit bytes before and after
// [from, to), with "…" where it was cut.
func around(line string, from, to, limit int) string {
	start, end := max(0, from-limit), min(len(line), to+limit/4)
	out := line[start:end]
	if start > 0 {
		out = "…" + out
	}
	if end < len(line) {
		out += "…"
	}
	return strings.ToValidUTF8(out, "")
}
