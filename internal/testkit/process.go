package testkit

import (
	"fmt"
	"os"
	"os/exec"
	"time"
)

// Process is a server a test rig started (Dovecot, or imapwhy and nginx
// for the benchmark): in its own process group, so that stopping it
// reaches every process it forked, and on Linux ended by the kernel if the
// rig dies without stopping it.
type Process struct {
	Cmd  *exec.Cmd
	done chan struct{} // closed when Wait has returned
	err  error         // Wait's result, valid after done
}

// StartProcess starts cmd as a Process, its stdout and stderr appended to
// outPath. An *os.File, not a pipe: Wait must not wait for the server's
// children to close a pipe they inherited.
func StartProcess(cmd *exec.Cmd, outPath string) (*Process, error) {
	out, err := os.OpenFile(outPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer out.Close() // the child has its own copy
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = groupProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", cmd.Path, err)
	}
	p := &Process{Cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// Pid is the process's id, also its process group's.
func (p *Process) Pid() int { return p.Cmd.Process.Pid }

// Done is closed when the process has exited and been waited for.
func (p *Process) Done() <-chan struct{} { return p.done }

// Err is Wait's result, once Done is closed.
func (p *Process) Err() error { return p.err }

// Exited reports whether the process has ended.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Stop sends SIGTERM to the whole group, then SIGKILL if the process has
// not exited within grace (killed then reports it), and finally sweeps the
// group for children that outlived it. The error says the process did not
// exit even after SIGKILL.
func (p *Process) Stop(grace time.Duration) (killed bool, err error) {
	pgid := p.Pid()
	if !p.Exited() {
		_ = SignalGroup(pgid, sigTerm)
		select {
		case <-p.done:
		case <-time.After(grace):
			killed = true
			_ = SignalGroup(pgid, sigKill)
			select {
			case <-p.done:
			case <-time.After(5 * time.Second):
				return true, fmt.Errorf("%s (pid %d) did not exit after SIGKILL", p.Cmd.Path, pgid)
			}
		}
	}
	_ = SignalGroup(pgid, sigKill)
	return killed, nil
}
