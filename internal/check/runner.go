package check

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/imapwhy/imapwhy/diagnose"
	"github.com/imapwhy/imapwhy/internal/config"
	"github.com/imapwhy/imapwhy/internal/discover"
	"github.com/imapwhy/imapwhy/internal/upstream"
)

// runner is the state of one check. It is used by one goroutine (Run's);
// imapclient's reader goroutine only touches the recorder.
type runner struct {
	opts     settled
	address  string
	password string
	report   Report
	obs      diagnose.Observation // what the proxy would have recorded, for Classify

	host   string
	port   int
	mode   string // config.TLS*
	addrs  []netip.Addr
	failed string // the step that failed, "" while none has

	raw        net.Conn         // the TCP connection
	up         *upstream.Client // the steps before login, on raw
	rec        *lineRecorder    // the server's lines, once imapclient has the connection
	client     *imapclient.Client
	noStartTLS bool // STARTTLS was chosen and the server does not offer it
	stop       func() bool
	disc       *discover.Discoverer // made by discoverer()
}

func newRunner(s settled, address, password string) *runner {
	r := &runner{opts: s, address: address, password: password, rec: newLineRecorder()}
	r.report = Report{Address: address, Lang: s.Lang, Steps: []Step{}}
	r.obs.Typed = diagnose.Facts(address, password)
	if s.OAuth {
		r.initOAuth()
	}
	return r
}

// plannedStep is a step and what runs it.
type plannedStep struct {
	name string
	run  func(ctx context.Context, s *Step) error
}

// plan is the steps after discovery, for the TLS mode.
func (r *runner) plan() []plannedStep {
	steps := []plannedStep{{StepDNS, r.resolve}, {StepTCP, r.connect}}
	switch r.mode {
	case config.TLSStartTLS:
		steps = append(steps,
			plannedStep{StepGreeting, r.greeting},
			plannedStep{StepStartTLS, r.startTLS},
			plannedStep{StepTLS, r.handshake},
		)
	case config.TLSNone:
		steps = append(steps,
			plannedStep{StepTLS, r.plaintext},
			plannedStep{StepGreeting, r.greeting},
		)
	default:
		steps = append(steps,
			plannedStep{StepTLS, r.handshake},
			plannedStep{StepGreeting, r.greeting},
		)
	}
	return append(steps,
		plannedStep{StepCapability, r.capability},
		plannedStep{StepLogin, r.login},
		plannedStep{StepInbox, r.inbox},
		plannedStep{StepLogout, r.logout},
	)
}

// run runs discovery and then the plan, skipping what cannot run after a
// failure.
func (r *runner) run(ctx context.Context) {
	r.do(ctx, plannedStep{StepDiscovery, r.discover})
	for _, p := range r.plan() {
		r.do(ctx, p)
	}
}

// do runs one step, or records it as skipped when an earlier one failed.
// A step function returns an error when the step failed, after recording
// in r.obs what it saw; the diagnosis is made here from r.obs unless the
// step set one itself.
func (r *runner) do(ctx context.Context, p plannedStep) {
	s := Step{Name: p.name, Details: []string{}}
	if r.failed != "" {
		s.Status = StatusSkipped
		s.Summary = r.t("not run: the %s step failed", r.failed)
		r.record(s)
		return
	}
	s.Status = StatusRunning
	r.progress(s)
	start := time.Now()
	err := p.run(ctx, &s)
	s.Duration = time.Since(start)
	switch {
	case err != nil:
		s.Status = StatusFailed
		s.Error = r.scrub(err.Error())
		if s.Diagnosis == nil {
			s.Diagnosis = r.diagnosis(diagnose.Classify(r.obs))
		}
		r.failed = p.name
		r.report.Diagnosis = s.Diagnosis
	case s.Status == StatusRunning:
		s.Status = StatusOK
	}
	r.record(s)
}

func (r *runner) record(s Step) {
	r.report.Steps = append(r.report.Steps, s)
	r.progress(s)
}

func (r *runner) progress(s Step) {
	if r.opts.Progress != nil {
		r.opts.Progress(s)
	}
}

// diagnosis renders d in the report's language.
func (r *runner) diagnosis(d diagnose.Diagnosis) *Diagnosis {
	return &Diagnosis{
		Cause:        d.Cause,
		Code:         d.Code,
		Confidence:   d.Confidence,
		Temporary:    d.Temporary,
		Provider:     d.Provider,
		ProviderName: d.ProviderName,
		Alternative:  d.Alternative,
		HelpURL:      d.HelpURL,
		Message:      diagnose.Message(d, r.opts.Lang),
		Detail:       r.scrub(d.Detail),
	}
}

// unexplained is the diagnosis for a connection failure that no typed
// fact explains (a DNS server failure, an unreachable network): Classify
// has nothing to go on, and its fallback is about passwords, which were
// never sent. The network is the honest guess, with low confidence.
func (r *runner) unexplained(err error) *Diagnosis {
	d := diagnose.Of(diagnose.CauseUpstreamTimeout)
	d.Confidence = diagnose.Low
	d.Detail = err.Error()
	return r.diagnosis(d)
}

// scrub removes the password from text that may quote the server or an
// error, in case a server echoes the command back.
func (r *runner) scrub(s string) string {
	if len(r.password) < 3 { // a short one would blank out ordinary words
		return s
	}
	return strings.ReplaceAll(s, r.password, "********")
}

// watch closes the connection when ctx ends, which ends every read and
// write in progress, imapclient's included.
func (r *runner) watch(ctx context.Context) {
	raw := r.raw
	r.stop = context.AfterFunc(ctx, func() { raw.Close() })
}

// close ends the session and the connection.
func (r *runner) close() {
	if r.stop != nil {
		r.stop()
	}
	if r.client != nil {
		r.client.Close() // waits for its reader goroutine
	}
	if r.raw != nil {
		r.raw.Close()
	}
}

// finish completes the report.
func (r *runner) finish() Report {
	r.report.OK = r.failed == "" && r.stepStatus(StepLogin) == StatusOK && r.stepStatus(StepInbox) == StatusOK
	r.report.Checklist = r.checklist()
	return r.report
}

// stepStatus is the status of the named step, "" if it is not in the report.
func (r *runner) stepStatus(name string) Status {
	if s := r.step(name); s != nil {
		return s.Status
	}
	return ""
}

func (r *runner) step(name string) *Step {
	for i := range r.report.Steps {
		if r.report.Steps[i].Name == name {
			return &r.report.Steps[i]
		}
	}
	return nil
}

// secure reports whether the connection is TLS.
func (r *runner) secure() bool {
	if r.up == nil {
		return false
	}
	_, ok := r.up.TLSState()
	return ok
}
