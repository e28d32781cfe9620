package desktop

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeCommand writes a script that records its arguments, one per line,
// to a file, and returns both paths.
func fakeCommand(t *testing.T) (script, record string) {
	dir := t.TempDir()
	record = filepath.Join(dir, "args")
	script = filepath.Join(dir, "notify")
	body := "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done > " + record + ".tmp && mv " + record + ".tmp " + record + "\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return script, record
}

func waitFile(t *testing.T, path string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := os.ReadFile(path)
		if err == nil {
			return string(b)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never written", path)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestArgumentsNoShell(t *testing.T) {
	for _, program := range []string{NotifySend, Osascript} {
		t.Run(program, func(t *testing.T) {
			script, record := fakeCommand(t)
			n, err := New(Options{Program: program, Path: script})
			if err != nil {
				t.Fatal(err)
			}
			title := `imapwhy: a"b$(touch /tmp/pwned)`
			body := "line one\nline two `id`; \x1b[31m" + strings.Repeat("x", 400)
			if !n.Notify("k", title, body) {
				t.Fatal("not started")
			}
			n.Close()
			got := strings.Split(strings.TrimSuffix(waitFile(t, record), "\n"), "\n")
			want := args(program, title, clean(body, maxBody))
			if len(got) != len(want) {
				t.Fatalf("args %q, want %q", got, want)
			}
			if got[len(got)-2] != title || !strings.HasPrefix(got[len(got)-1], "line one line two `id`; [31m") ||
				len([]rune(got[len(got)-1])) != maxBody {
				t.Errorf("title/body passed as %q / %q", got[len(got)-2], got[len(got)-1])
			}
			if program == Osascript && !strings.Contains(strings.Join(got, " "), "item 2 of argv") {
				t.Errorf("osascript script does not read argv: %q", got)
			}
			if _, err := os.Stat("/tmp/pwned"); err == nil {
				t.Error("a shell ran the title")
			}
		})
	}
}

func TestInterval(t *testing.T) {
	script, record := fakeCommand(t)
	now := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	n, err := New(Options{Program: NotifySend, Path: script, Interval: time.Minute, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if !n.Notify("a", "t", "b") {
		t.Fatal("first notification not started")
	}
	waitFile(t, record)
	waitIdle(t, n)
	if n.Notify("a", "t", "b") {
		t.Error("the same key notified again within the interval")
	}
	now = now.Add(time.Minute)
	if !n.Notify("a", "t", "b") {
		t.Error("the key did not notify after the interval")
	}
}

func waitIdle(t *testing.T, n *Notifier) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		n.mu.Lock()
		busy := n.busy
		n.mu.Unlock()
		if !busy {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("command still running")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestMissingCommand(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	if _, err := New(Options{Program: NotifySend}); err == nil {
		t.Error("New succeeded without notify-send in PATH")
	}
	if _, err := New(Options{Program: "xmessage"}); err == nil {
		t.Error("New took an unknown program")
	}
}

// TestTitleWithoutBidi: a title built from a user name cannot reorder or
// hide text on the desktop: format characters (bidi overrides, isolates,
// zero-width) go like control characters do.
func TestTitleWithoutBidi(t *testing.T) {
	script, record := fakeCommand(t)
	n, err := New(Options{Program: NotifySend, Path: script})
	if err != nil {
		t.Fatal(err)
	}
	if !n.Notify("k", "imapwhy: \u202eelgoog\u2066x\u200by\u2028z", "body") {
		t.Fatal("not started")
	}
	n.Close()
	got := strings.Split(strings.TrimSuffix(waitFile(t, record), "\n"), "\n")
	if title := got[len(got)-2]; title != "imapwhy: elgoog x y z" {
		t.Errorf("title passed as %q", title)
	}
}
