//go:build linux

package main

import (
	"fmt"
	"io"
	"math"
	"strings"
	"time"
)

// report is everything one run measured, printed as Markdown.
type report struct {
	Messages, MessageSize int
	Rounds                int
	LoginTime             time.Duration
	Noops                 int
	Settle                time.Duration
	LoadStart, LoadEnd    string
	Shield                bool   // imapwhy's shield was on
	FileLimit             uint64 // open-file limit of the driver and the proxies
	SessionsCut           bool   // the idle test held fewer sessions than asked: FileLimit

	Bulk  []bulkRow
	Login []loginRow
	Noop  []noopRow
	Idle  []idleResult
}

// Target thresholds: the cost of one instance of a gateway.
const (
	targetPlainRatio   = 0.95
	targetAddedLogin   = 300 * time.Microsecond
	targetIdleSession  = 16 << 10
	targetIdleSessions = 10000
)

func (r *report) render(w io.Writer) {
	fmt.Fprintf(w, "Load average (1, 5, 15 min) at the start: %s; at the end: %s.\n", r.LoadStart, r.LoadEnd)
	fmt.Fprintf(w, "Every figure is the median of %d runs; a ratio or an added latency is taken within each run, then the median of those.\n", r.Rounds)
	if !r.Shield {
		fmt.Fprintln(w, "imapwhy's shield was **off** (`-shield=false`): not the configuration as shipped.")
	}
	if len(r.Bulk) > 0 {
		r.renderBulk(w)
	}
	if len(r.Login) > 0 {
		r.renderLogin(w)
	}
	if len(r.Noop) > 0 {
		r.renderNoop(w)
	}
	if len(r.Idle) > 0 {
		r.renderIdle(w)
	}
	r.renderTargets(w)
}

func (r *report) renderBulk(w io.Writer) {
	fmt.Fprintf(w, "\n### Bulk FETCH: %d messages of %d KiB, `FETCH 1:* BODY.PEEK[]`\n\n", r.Messages, r.MessageSize>>10)
	fmt.Fprintln(w, "| client side | path | MB/s | × direct | proxy CPU s/GB | client TLS |")
	fmt.Fprintln(w, "|---|---|---:|---:|---:|---|")
	for _, b := range r.Bulk {
		fmt.Fprintf(w, "| %s | %s | %.0f | %.2f | %s | %s |\n", b.Target.Variant, pathName(b.Target),
			b.MBps, b.Ratio, num(b.CPUPerGB, "%.2f"), dash(b.TLS))
	}
}

func (r *report) renderLogin(w io.Writer) {
	fmt.Fprintf(w, "\n### Login: connect, (TLS,) greeting, `LOGIN` to its tagged OK (\"login\"), then a `NOOP` to its OK (\"ready\"), then `LOGOUT`; %v per run\n\n", r.LoginTime)
	fmt.Fprintln(w, "| client side | path | clients | logins/s | × direct | login p50 ms | login p99 ms | added p50 ms | added p99 ms | ready p50 ms | added ready p50 ms | errors |")
	fmt.Fprintln(w, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, l := range r.Login {
		fmt.Fprintf(w, "| %s | %s | %d | %.0f | %.2f | %.2f | %.2f | %s | %s | %.2f | %s | %d/%d |\n", l.Target.Variant, pathName(l.Target),
			l.Clients, l.PerSec, l.Ratio, ms(l.P50), ms(l.P99), added(l.Target, ms(l.Added50), "%+.2f"),
			added(l.Target, ms(l.Added99), "%+.2f"), ms(l.Ready50), added(l.Target, ms(l.AddedReady), "%+.2f"),
			l.Errors, l.Errors+l.TotalLogin)
	}
}

func (r *report) renderNoop(w io.Writer) {
	fmt.Fprintf(w, "\n### Round trip after login: %d `NOOP`s in a row on one session\n\n", r.Noops)
	fmt.Fprintln(w, "| client side | path | p50 µs | p99 µs | added p50 µs | added p99 µs |")
	fmt.Fprintln(w, "|---|---|---:|---:|---:|---:|")
	for _, n := range r.Noop {
		fmt.Fprintf(w, "| %s | %s | %.0f | %.0f | %s | %s |\n", n.Target.Variant, pathName(n.Target),
			us(n.P50), us(n.P99), added(n.Target, us(n.Added50), "%+.0f"), added(n.Target, us(n.Added99), "%+.0f"))
	}
}

func (r *report) renderIdle(w io.Writer) {
	fmt.Fprintf(w, "\n### Idle sessions: TLS to the proxy, `LOGIN`, `SELECT INBOX`, `IDLE`; upstream go-imap's imapmemserver\n\n")
	fmt.Fprintln(w, "RSS of the proxy's processes (nginx: its workers), read once it has settled: at least", r.Settle, "after the last session opened, then until it moves less than 1% a second.")
	fmt.Fprintln(w, "*per session*: growth since before the first session, divided by the sessions (one-time costs of the first logins included);")
	fmt.Fprintln(w, "*marginal*: growth since the previous row, divided by the sessions added.")
	fmt.Fprintln(w)
	fmt.Fprint(w, "| sessions |")
	for _, res := range r.Idle {
		p := res.Target.Path
		fmt.Fprintf(w, " %s KiB per session | %s KiB marginal | %s RSS MiB |", p, p, p)
	}
	fmt.Fprint(w, "\n|---:|")
	fmt.Fprint(w, strings.Repeat("---:|---:|---:|", len(r.Idle)))
	fmt.Fprintln(w)
	for i := range r.Idle[0].Levels {
		fmt.Fprintf(w, "| %d |", r.Idle[0].Levels[i].Sessions)
		for _, res := range r.Idle {
			if i >= len(res.Levels) {
				fmt.Fprint(w, " – | – | – |")
				continue
			}
			l := res.Levels[i]
			fmt.Fprintf(w, " %.1f | %.1f | %.0f |", l.PerSession/1024, l.Marginal/1024, float64(l.RSS)/(1<<20))
		}
		fmt.Fprintln(w)
	}
	r.renderIdleGo(w)
	fmt.Fprintln(w)
	for _, res := range r.Idle {
		fmt.Fprintf(w, "%s: RSS before the first session %.1f MiB; %d sessions answered DONE at the end, %d failed",
			res.Target.Path, float64(res.Base)/(1<<20), res.Held, res.Failed)
		if res.Err != nil {
			fmt.Fprintf(w, "; stopped early: %v", res.Err)
		}
		fmt.Fprintln(w, ".  ")
	}
}

// renderIdleGo shows what imapwhy's Go runtime reports per idle session:
// goroutines and their stacks exactly; heap in use including garbage not
// yet collected.
func (r *report) renderIdleGo(w io.Writer) {
	var rs []idleResult
	for _, res := range r.Idle {
		if res.BaseGo != nil && len(res.Levels) > 0 && res.Levels[0].Go != nil {
			rs = append(rs, res)
		}
	}
	if len(rs) == 0 {
		return
	}
	fmt.Fprintln(w, "\nimapwhy's Go runtime (its `/metrics`), growth per session since before the first session:")
	fmt.Fprintln(w)
	fmt.Fprint(w, "| sessions |")
	for _, res := range rs {
		p := res.Target.Path
		fmt.Fprintf(w, " %s goroutines | %s stack KiB | %s heap in use KiB |", p, p, p)
	}
	fmt.Fprint(w, "\n|---:|")
	fmt.Fprint(w, strings.Repeat("---:|---:|---:|", len(rs)))
	fmt.Fprintln(w)
	for i, l := range rs[0].Levels {
		fmt.Fprintf(w, "| %d |", l.Sessions)
		for _, res := range rs {
			if i >= len(res.Levels) || res.Levels[i].Go == nil {
				fmt.Fprint(w, " – | – | – |")
				continue
			}
			g, b, n := res.Levels[i].Go, res.BaseGo, float64(res.Levels[i].Sessions)
			fmt.Fprintf(w, " %.2f | %.1f | %.1f |", float64(g.Goroutines-b.Goroutines)/n,
				float64(g.Stack-b.Stack)/n/1024, float64(g.HeapInuse-b.HeapInuse)/n/1024)
		}
		fmt.Fprintln(w)
	}
}

// renderTargets compares imapwhy with the targets.
func (r *report) renderTargets(w io.Writer) {
	fmt.Fprint(w, "\n### imapwhy against the targets\n\n")
	fmt.Fprintln(w, "| target | measured | met |")
	fmt.Fprintln(w, "|---|---|---|")
	row := func(name, measured string, ok bool) {
		fmt.Fprintf(w, "| %s | %s | %s |\n", name, measured, yes(ok))
	}
	if b, ok := findBulk(r.Bulk, variantPlain, pathImapwhy); ok {
		row(fmt.Sprintf("plaintext FETCH ≥ %.2f × direct", targetPlainRatio), fmt.Sprintf("%.2f × direct", b.Ratio), b.Ratio >= targetPlainRatio)
	}
	if v, ok := bulkVersus(r.Bulk, variantTLS, pathImapwhy, pathNginx); ok {
		row("TLS FETCH ≥ nginx", fmt.Sprintf("%.2f × nginx", v), v >= 1)
	}
	if l, ok := firstLogin(r.Login, variantPlain, pathImapwhy); ok {
		row(fmt.Sprintf("added login latency p50 ≤ %v (plaintext, %d client)", targetAddedLogin, l.Clients),
			fmt.Sprintf("%+.2f ms to the LOGIN OK, %+.2f ms to the first command's OK", ms(l.Added50), ms(l.AddedReady)),
			l.Added50 <= targetAddedLogin && l.AddedReady <= targetAddedLogin)
	}
	for _, res := range r.Idle {
		if res.Target.Path != pathImapwhy || len(res.Levels) == 0 {
			continue
		}
		last := res.Levels[len(res.Levels)-1]
		row(fmt.Sprintf("≤ %d KiB per idle TLS session", targetIdleSession>>10),
			fmt.Sprintf("%.1f KiB per session, %.1f marginal, at %d sessions", last.PerSession/1024, last.Marginal/1024, last.Sessions),
			max(last.PerSession, last.Marginal) <= targetIdleSession)
		measured := fmt.Sprintf("%d held, %d failed", res.Held, res.Failed)
		if r.SessionsCut {
			measured += fmt.Sprintf(" (the open-file limit here, %d, fits no more)", r.FileLimit)
		}
		row(fmt.Sprintf("%d sessions held without errors", targetIdleSessions),
			measured, res.Held >= targetIdleSessions && res.Failed == 0 && res.Err == nil)
	}
}

func findBulk(rows []bulkRow, variant, path string) (bulkRow, bool) {
	for _, b := range rows {
		if b.Target.Variant == variant && b.Target.Path == path {
			return b, true
		}
	}
	return bulkRow{}, false
}

// bulkVersus is the median over rounds of path a's MB/s over path b's.
func bulkVersus(rows []bulkRow, variant, a, b string) (float64, bool) {
	ra, ok1 := findBulk(rows, variant, a)
	rb, ok2 := findBulk(rows, variant, b)
	if !ok1 || !ok2 || len(ra.Samples) != len(rb.Samples) {
		return 0, false
	}
	var v []float64
	for i := range ra.Samples {
		v = append(v, ra.Samples[i]/rb.Samples[i])
	}
	return median(v), true
}

// firstLogin is the row of the lowest concurrency for variant and path.
func firstLogin(rows []loginRow, variant, path string) (loginRow, bool) {
	for _, l := range rows {
		if l.Target.Variant == variant && l.Target.Path == path {
			return l, true
		}
	}
	return loginRow{}, false
}

// pathName is the path as the tables show it.
func pathName(t target) string {
	if t.Path == pathDirect && t.Variant == variantTLS {
		return "direct (Dovecot's TLS)"
	}
	return t.Path
}

func added(t target, v float64, format string) string {
	if t.Path == pathDirect {
		return "–"
	}
	return fmt.Sprintf(format, v)
}

func num(v float64, format string) string {
	if math.IsNaN(v) {
		return "–"
	}
	return fmt.Sprintf(format, v)
}

func dash(s string) string {
	if s == "" {
		return "–"
	}
	return s
}

func yes(ok bool) string {
	if ok {
		return "yes"
	}
	return "**no**"
}
