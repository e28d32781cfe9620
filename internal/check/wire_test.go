package check

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/imapwhy/imapwhy/diagnose"
)

// TestLineRecorder: lines split across reads, CRLF and LF, the bound on
// line length and on the lines kept.
func TestLineRecorder(t *testing.T) {
	l := newLineRecorder()
	l.received([]byte("* OK ready\r\n* CAPA"))
	mark := l.mark()
	l.received([]byte("BILITY IMAP4rev1\r\nT1 OK done\nT2 "))
	if got, want := l.since(mark), []string{"* CAPABILITY IMAP4rev1", "T1 OK done"}; !reflect.DeepEqual(got, want) {
		t.Errorf("since = %q, want %q", got, want)
	}
	if got := l.since(l.mark()); got != nil {
		t.Errorf("since(now) = %q, want nothing", got)
	}

	l = newLineRecorder()
	l.received([]byte(strings.Repeat("x", 3*maxLine) + "\r\n"))
	if got := l.since(0); len(got) != 1 || len(got[0]) != maxLine {
		t.Errorf("an over-long line is kept as %d lines, the first of %d bytes", len(got), len(got[0]))
	}

	l = newLineRecorder()
	for i := range maxRecorded + 10 {
		l.received(fmt.Appendf(nil, "* %d\r\n", i))
	}
	got := l.since(0)
	if len(got) != maxRecorded || got[0] != "* 10" {
		t.Errorf("kept %d lines from %q, want %d from \"* 10\"", len(got), got[0], maxRecorded)
	}
	if got := l.since(maxRecorded + 9); !reflect.DeepEqual(got, []string{fmt.Sprintf("* %d", maxRecorded+9)}) {
		t.Errorf("since(last) = %q", got)
	}
}

func TestPrintable(t *testing.T) {
	tests := []struct {
		in   string
		max  int
		want string
	}{
		{"* OK ready", 100, "* OK ready"},
		{"evil\x1b[2Jclear", 100, "evil?[2Jclear"},
		{"right\u202eto left", 100, "right?to left"},
		{"bad \xff utf-8", 100, "bad ? utf-8"},
		{"line\r\nbreak", 100, "line??break"},
		{"日本語のテキスト", 3, "日本語…"},
	}
	for _, tc := range tests {
		if got := printable(tc.in, tc.max); got != tc.want {
			t.Errorf("printable(%q, %d) = %q, want %q", tc.in, tc.max, got, tc.want)
		}
	}
}

func TestFormatDuration(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, "0ms"},
		{1500 * time.Microsecond, "1ms"},
		{523 * time.Millisecond, "523ms"},
		{9999 * time.Millisecond, "9999ms"},
		{12340 * time.Millisecond, "12.3s"},
	}
	for _, tc := range tests {
		if got := formatDuration(tc.d); got != tc.want {
			t.Errorf("formatDuration(%v) = %q, want %q", tc.d, got, tc.want)
		}
	}
}

// TestPrinterTerminal: on a terminal a running step draws a spinner, and
// its end clears the line and prints the result; no goroutine is left.
func TestPrinterTerminal(t *testing.T) {
	defer goleak.VerifyNone(t)
	var out bytes.Buffer // the printer writes under its own lock, the spinner too
	p := NewPrinter(&out, "en", true)
	p.Step(Step{Name: StepDNS, Status: StatusRunning})
	p.Step(Step{Name: StepDNS, Status: StatusOK, Duration: 3 * time.Millisecond, Summary: "imap.example.test is 192.0.2.1"})
	p.Step(Step{Name: StepTCP, Status: StatusRunning})
	p.Finish(Report{OK: false, Steps: []Step{{Name: StepTCP, Status: StatusFailed}}})
	got := out.String()
	for _, want := range []string{
		"  dns         -",
		"\r\x1b[K  dns         ok          3ms  imap.example.test is 192.0.2.1\n",
		"  tcp         -",
		"Result: FAILED at the tcp step.\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%q", want, got)
		}
	}
}

// TestPrinterPlain: not on a terminal, a running step prints nothing.
func TestPrinterPlain(t *testing.T) {
	var out bytes.Buffer
	p := NewPrinter(&out, "en", false)
	p.Step(Step{Name: StepDNS, Status: StatusRunning})
	if out.Len() != 0 {
		t.Errorf("a running step printed %q", out.String())
	}
	p.Step(Step{Name: StepDNS, Status: StatusSkipped, Summary: "not run"})
	if got, want := out.String(), "  dns         skipped          not run\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// TestPrinterConfidence: the diagnosis line gives the confidence in the
// reader's language.
func TestPrinterConfidence(t *testing.T) {
	d := &Diagnosis{Cause: "upstream.timeout", Code: "UNAVAILABLE", Confidence: diagnose.Low, Message: "m"}
	for lang, want := range map[string]string{"en": "(upstream.timeout, UNAVAILABLE, confidence low)", "ja": "(upstream.timeout, UNAVAILABLE, 確度 低)"} {
		var out bytes.Buffer
		NewPrinter(&out, lang, false).Finish(Report{Steps: []Step{{Name: StepTCP, Status: StatusFailed}}, Diagnosis: d})
		if !strings.Contains(out.String(), want) {
			t.Errorf("%s: output lacks %q:\n%s", lang, want, out.String())
		}
	}
}
