package check

// The human format: each step as it ends (with a spinner while it runs on
// a terminal), then the checklist, the result and the diagnosis.

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/imapwhy/imapwhy/diagnose"
)

// spinnerFrames cycle while a step runs on a terminal; ASCII, so that any
// terminal font has them.
var spinnerFrames = []string{"-", "\\", "|", "/"}

const spinnerInterval = 100 * time.Millisecond

// Printer writes a check for people. Its Step method is an
// Options.Progress. Write errors are ignored: there is nowhere to report
// them.
type Printer struct {
	w        io.Writer
	lang     string
	terminal bool

	mu   sync.Mutex
	spin *spinner // the running step's, on a terminal
}

// NewPrinter returns a Printer writing to w in lang ("ja" or "en"; step
// lines, checklist and diagnosis alike). On a terminal, a running step shows a
// spinner, redrawn with carriage returns; otherwise each step is one plain
// line (and its details) when it ends.
func NewPrinter(w io.Writer, lang string, terminal bool) *Printer {
	return &Printer{w: w, lang: lang, terminal: terminal}
}

// Begin prints the first line.
func (p *Printer) Begin(address string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, "imapwhy check %s\n", printable(address, maxShown))
}

// Step prints a step that starts (a spinner on a terminal, nothing
// otherwise) or ends.
func (p *Printer) Step(s Step) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stopSpinner()
	if s.Status == StatusRunning {
		if p.terminal {
			p.spin = startSpinner(p.w, &p.mu, "  "+pad(s.Name, 11)+" ")
		}
		return
	}
	if p.terminal {
		io.WriteString(p.w, "\r\x1b[K") // the spinner's line
	}
	io.WriteString(p.w, formatStep(s))
}

// Finish stops a spinner left running and prints the checklist, the
// result and the diagnosis.
func (p *Printer) Finish(r Report) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stopSpinner()
	io.WriteString(p.w, formatEnd(r, p.lang))
}

// stopSpinner stops the spinner, if any; p.mu is held.
func (p *Printer) stopSpinner() {
	if p.spin == nil {
		return
	}
	// The spinner takes p.mu to draw: let it go while waiting for it.
	s := p.spin
	p.spin = nil
	p.mu.Unlock()
	s.stop()
	p.mu.Lock()
}

// formatStep is a finished step: its line, then its details indented.
func formatStep(s Step) string {
	var b strings.Builder
	dur := ""
	if s.Status != StatusSkipped {
		dur = formatDuration(s.Duration)
	}
	fmt.Fprintf(&b, "  %s %s %7s  %s\n", pad(s.Name, 11), pad(statusWord(s.Status), 7), dur, s.Summary)
	indent := strings.Repeat(" ", 33)
	for _, d := range s.Details {
		b.WriteString(indent + d + "\n")
	}
	return b.String()
}

// formatEnd is the checklist, the result and the diagnosis.
func formatEnd(r Report, lang string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\n%s\n", phrase(lang, "heading.checklist"))
	for _, it := range r.Checklist {
		fmt.Fprintf(&b, "  %s %s\n  %s %s\n", pad(statusWord(it.Status), 7), it.Question, pad("", 7), it.Answer)
	}
	b.WriteString("\n" + phrase(lang, "heading.result") + ": ")
	switch {
	case r.OK:
		b.WriteString(phrase(lang, "result.ok") + "\n")
	default:
		fmt.Fprintf(&b, phrase(lang, "result.failed")+"\n", failedStep(r))
	}
	if d := r.Diagnosis; d != nil {
		fmt.Fprintf(&b, "%s: %s\n", phrase(lang, "heading.diagnosis"), d.Message)
		fmt.Fprintf(&b, "  (%s, %s, %s %s)\n", d.Cause, d.Code, phrase(lang, "heading.confidence"), confidenceWord(lang, d.Confidence))
		if d.HelpURL != "" {
			fmt.Fprintf(&b, "%s: %s\n", phrase(lang, "heading.help"), d.HelpURL)
		}
	}
	return b.String()
}

// failedStep is the name of the step that failed, or the last that did
// not end well.
func failedStep(r Report) string {
	name := ""
	for _, s := range r.Steps {
		switch s.Status {
		case StatusFailed:
			return s.Name
		case StatusWarning, StatusSkipped:
			if name == "" {
				name = s.Name
			}
		}
	}
	return name
}

func statusWord(s Status) string {
	switch s {
	case StatusFailed:
		return "FAILED"
	case StatusWarning:
		return "warning"
	case StatusSkipped:
		return "skipped"
	}
	return string(s)
}

// formatDuration rounds for people: 0ms, 12ms, 1.3s.
func formatDuration(d time.Duration) string {
	if d < 10*time.Second {
		return fmt.Sprintf("%dms", d.Milliseconds())
	}
	return fmt.Sprintf("%.1fs", d.Seconds())
}

// pad pads s with spaces to n characters.
func pad(s string, n int) string {
	if len(s) >= n {
		return s
	}
	return s + strings.Repeat(" ", n-len(s))
}

// spinner redraws one line with a turning character until stopped.
type spinner struct {
	done    chan struct{}
	stopped chan struct{}
}

// startSpinner draws prefix and a turning character on w, taking mu for
// each frame, until stop.
func startSpinner(w io.Writer, mu *sync.Mutex, prefix string) *spinner {
	s := &spinner{done: make(chan struct{}), stopped: make(chan struct{})}
	io.WriteString(w, prefix+spinnerFrames[0])
	go s.spin(w, mu, prefix)
	return s
}

func (s *spinner) spin(w io.Writer, mu *sync.Mutex, prefix string) {
	defer close(s.stopped)
	t := time.NewTicker(spinnerInterval)
	defer t.Stop()
	for i := 1; ; i++ {
		select {
		case <-s.done:
			return
		case <-t.C:
		}
		mu.Lock()
		io.WriteString(w, "\r"+prefix+spinnerFrames[i%len(spinnerFrames)])
		mu.Unlock()
	}
}

// stop ends the spinner and waits for its goroutine.
func (s *spinner) stop() {
	close(s.done)
	<-s.stopped
}

// confidenceWord is a diagnosis's confidence in the reader's language
// ("低", not "low", in Japanese); the JSON keeps the value itself.
func confidenceWord(lang string, c diagnose.Confidence) string {
	if w := phrase(lang, "confidence."+string(c)); w != "" {
		return w
	}
	return string(c)
}
