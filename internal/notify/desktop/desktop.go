// Package desktop shows a desktop notification through the platform's own
// command: notify-send on Linux, osascript on macOS. The command
// is run with arguments, never through a shell, and the text reaches
// AppleScript as an argument (argv), never as script source. It is
// bounded: one command at a time (others are dropped while it runs), a
// timeout, and at most one notification per key per Interval.
package desktop

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/rs/zerolog"
)

// Programs that can show a notification.
const (
	NotifySend = "notify-send" // Linux (libnotify)
	Osascript  = "osascript"   // macOS
)

// Options configures a Notifier.
type Options struct {
	// Program is NotifySend or Osascript; "" picks the platform's.
	Program string
	// Path runs this file as Program instead of looking Program up in
	// PATH (tests).
	Path string
	// Timeout bounds one command; default 5s.
	Timeout time.Duration
	// Interval is how often one key may notify; default 10m.
	Interval time.Duration
	Log      zerolog.Logger
	// Now is the clock for Interval; nil: time.Now.
	Now func() time.Time
}

// Bounds of what is shown.
const (
	maxTitle = 80
	maxBody  = 300
	maxKeys  = 1024
)

// Notifier shows notifications. It is safe for concurrent use.
type Notifier struct {
	o    Options
	path string

	mu      sync.Mutex
	busy    bool
	closed  bool
	last    map[string]time.Time
	running sync.WaitGroup
}

// New finds the platform's command. It fails where there is none (another
// platform, or the command is not installed).
func New(o Options) (*Notifier, error) {
	if o.Program == "" {
		switch runtime.GOOS {
		case "linux", "freebsd", "openbsd", "netbsd":
			o.Program = NotifySend
		case "darwin":
			o.Program = Osascript
		default:
			return nil, fmt.Errorf("desktop: no notification command known on %s", runtime.GOOS)
		}
	}
	if o.Program != NotifySend && o.Program != Osascript {
		return nil, fmt.Errorf("desktop: unknown program %q", o.Program)
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	if o.Interval <= 0 {
		o.Interval = 10 * time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	path := o.Path
	if path == "" {
		var err error
		if path, err = exec.LookPath(o.Program); err != nil {
			return nil, fmt.Errorf("desktop: %w", err)
		}
	}
	return &Notifier{o: o, path: path, last: make(map[string]time.Time)}, nil
}

// Notify shows title and body unless key notified less than Interval ago,
// a command is still running, or the Notifier is closed. It does not wait
// for the command. It reports whether a command was started.
func (n *Notifier) Notify(key, title, body string) bool {
	now := n.o.Now()
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed || n.busy {
		return false
	}
	if t, ok := n.last[key]; ok && now.Sub(t) < n.o.Interval {
		return false
	}
	if len(n.last) >= maxKeys {
		clear(n.last)
	}
	n.last[key] = now
	n.busy = true
	n.running.Add(1)
	go n.run(args(n.o.Program, clean(title, maxTitle), clean(body, maxBody)))
	return true
}

// Close waits for a running command; later Notify calls do nothing.
func (n *Notifier) Close() {
	n.mu.Lock()
	n.closed = true
	n.mu.Unlock()
	n.running.Wait()
}

func (n *Notifier) run(argv []string) {
	defer n.running.Done()
	defer func() {
		n.mu.Lock()
		n.busy = false
		n.mu.Unlock()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), n.o.Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, n.path, argv...)
	cmd.WaitDelay = time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			err = fmt.Errorf("%w (timed out after %s)", err, n.o.Timeout)
		}
		n.o.Log.Warn().Err(err).Str("event", "desktop_notify_failed").Str("program", n.o.Program).
			Str("output", clean(string(out), 200)).Msg("desktop notification failed")
	}
}

// args builds the command line. Title and body are separate arguments
// after "--" (notify-send) or after the script (osascript's argv).
func args(program, title, body string) []string {
	if program == Osascript {
		return []string{
			"-e", "on run argv",
			"-e", "display notification (item 2 of argv) with title (item 1 of argv)",
			"-e", "end run",
			title, body,
		}
	}
	return []string{"--app-name=imapwhy", "--urgency=normal", "--", title, body}
}

// clean makes s one line of at most n runes without control or format
// characters (bidi overrides could make a title read backwards).
func clean(s string, n int) string {
	s = strings.Join(strings.Fields(strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == '\u2028' || r == '\u2029' {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))), " ")
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}
