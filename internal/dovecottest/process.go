package dovecottest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/imapwhy/imapwhy/internal/testkit"
)

const (
	// startTimeout bounds the wait for the first greeting.
	startTimeout = 10 * time.Second
	// stopTimeout is how long Dovecot may take to exit after SIGTERM
	// ("dovecot stop" takes over a second) before the group is killed.
	stopTimeout = 5 * time.Second
	// stateRoot holds the instances' directories. Not os.TempDir(): a long
	// $TMPDIR would push the Unix sockets in base_dir past their 108-byte
	// limit.
	stateRoot = "/tmp"
	dirPrefix = "dvt-"
	ownerFile = "owner"
)

// errExited reports that Dovecot exited before it greeted.
var errExited = errors.New("dovecot exited")

// process is one running "dovecot -F" (the master, in its own process group).
type process struct{ *testkit.Process }

// moduleDir is where Debian's packages put Dovecot's plugins.
const moduleDir = "/usr/lib/dovecot/modules"

// dovecotBinary finds the dovecot master and checks for the modules the
// configuration needs. /usr/sbin is not on every non-root PATH.
func dovecotBinary() (string, error) {
	bin, err := exec.LookPath("dovecot")
	if err != nil {
		bin = "/usr/sbin/dovecot"
		if _, err := os.Stat(bin); err != nil {
			return "", errors.New("dovecot not installed: run scripts/test (it installs dovecot-imapd)")
		}
	}
	// Without it Dovecot starts, greets, and only its auth process dies
	// at the first login.
	if _, err := os.Stat(filepath.Join(moduleDir, "auth", "libauthdb_lua.so")); err != nil {
		return "", errors.New("dovecot's Lua passdb is not installed: run scripts/test (it installs dovecot-auth-lua)")
	}
	return bin, nil
}

// startProcess runs "dovecot -F -c conf" in its own process group, its
// stdout and stderr (where it reports errors before its log is open) going
// to outPath.
func startProcess(bin, conf, outPath string) (*process, error) {
	cmd := exec.Command(bin, "-F", "-c", conf)
	cmd.Dir = filepath.Dir(conf)
	p, err := testkit.StartProcess(cmd, outPath)
	if err != nil {
		return nil, err
	}
	return &process{p}, nil
}

// stop stops Dovecot and its children, SIGKILL if it has not exited within
// stopTimeout of SIGTERM.
func (p *process) stop() error {
	_, err := p.Stop(stopTimeout)
	return err
}

// waitGreeting dials addr until it sends "* OK", Dovecot exits, or ctx ends.
func waitGreeting(ctx context.Context, addr string, p *process) error {
	var lastErr error
	for {
		if p.Exited() {
			return fmt.Errorf("%w: %v", errExited, p.Err())
		}
		line, err := readGreeting(ctx, addr)
		if err == nil && strings.HasPrefix(line, "* OK") {
			return nil
		}
		if err == nil {
			err = fmt.Errorf("unexpected greeting %q", line)
		}
		lastErr = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("no greeting on %s within %v: %w", addr, startTimeout, lastErr)
		case <-p.Done():
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func readGreeting(ctx context.Context, addr string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	line, err := bufio.NewReaderSize(c, 1024).ReadString('\n')
	return strings.TrimRight(line, "\r\n"), err
}

// freePorts finds a port free on both 127.0.0.1 and 127.0.0.2 (the plain
// listener, bound to both) and one free on 127.0.0.1 (implicit TLS). They
// are released before Dovecot binds them; Start retries on the race.
func freePorts() (plain, implicitTLS int, err error) {
	for range 20 {
		plain, ok, err := portFreeOnBoth()
		if err != nil {
			return 0, 0, err
		}
		if !ok {
			continue
		}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, 0, err
		}
		implicitTLS = l.Addr().(*net.TCPAddr).Port
		l.Close()
		if implicitTLS != plain {
			return plain, implicitTLS, nil
		}
	}
	return 0, 0, errors.New("no port free on both 127.0.0.1 and 127.0.0.2")
}

// portFreeOnBoth picks a free port on 127.0.0.1 and reports whether it is
// free on 127.0.0.2 too.
func portFreeOnBoth() (port int, ok bool, err error) {
	a, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, false, err
	}
	defer a.Close()
	port = a.Addr().(*net.TCPAddr).Port
	b, err := net.Listen("tcp", net.JoinHostPort("127.0.0.2", strconv.Itoa(port)))
	if err != nil {
		return port, false, nil
	}
	b.Close()
	return port, true, nil
}

// writeOwner records which test process owns dir, for reapStale. The file
// appears whole (written aside, then renamed): another test process reaping
// at that moment must never read it empty and take dir for a dead one's.
func writeOwner(dir string) error {
	tmp := filepath.Join(dir, ownerFile+".new")
	if err := os.WriteFile(tmp, []byte(processIdentity(os.Getpid())+"\n"), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, ownerFile))
}

// reapStale stops Dovecots whose test binary died without cleaning up
// (a crash or a "go test -timeout" panic skips t.Cleanup) and removes their
// directories. A process is only signalled if its command line names that
// directory's dovecot.conf, so nothing else is ever touched.
func reapStale(logf func(format string, args ...any)) {
	dirs, _ := filepath.Glob(filepath.Join(stateRoot, dirPrefix+"*"))
	for _, dir := range dirs {
		owner, err := os.ReadFile(filepath.Join(dir, ownerFile))
		if err != nil || len(owner) == 0 {
			// Being created right now, or not ours: leave young ones alone.
			if fi, serr := os.Stat(dir); serr != nil || time.Since(fi.ModTime()) < time.Minute {
				continue
			}
		} else if ownerAlive(strings.TrimSpace(string(owner))) {
			continue
		}
		conf := filepath.Join(dir, "dovecot.conf")
		if pid, ok := masterPID(dir); ok && cmdlineMentions(pid, conf) {
			_ = testkit.SignalGroup(pid, syscall.SIGKILL)
			logf("dovecottest: killed stale dovecot (pid %d) of %s", pid, dir)
		}
		if err := os.RemoveAll(dir); err == nil {
			logf("dovecottest: removed stale %s", dir)
		}
	}
}

// ownerAlive reports whether the process recorded as "pid start-time" is
// still the same running process.
func ownerAlive(identity string) bool {
	pidStr, _, _ := strings.Cut(identity, " ")
	pid, err := strconv.Atoi(pidStr)
	if err != nil || pid <= 0 {
		return false
	}
	return processIdentity(pid) == identity
}

func masterPID(dir string) (int, bool) {
	b, err := os.ReadFile(filepath.Join(dir, "run", "master.pid"))
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid, err == nil && pid > 1
}
