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
	Rounds                int // of the login and NOOP measurements
	BulkRounds            int
	LoginTime             time.Duration
	Noops                 int
	Settle                time.Duration
	LoadStart, LoadEnd    string
	Shield                bool   // imapwhy's shield was on
	FileLimit             uint64 // open-file limit of the driver and the processes it starts
	SessionsCut           bool   // the idle test asked fewer sessions than wanted: the driver's FileLimit

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
	fmt.Fprintf(w, "Every figure is the median of %d runs (bulk FETCH: %d, each a fraction of a second); a ratio or an added latency is taken within each run, then the median of those.\n", r.Rounds, r.BulkRounds)
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
	fmt.Fprintln(w, "*× direct* is the median of the runs' ratios, with the middle half of them in brackets: the spread a busy machine gives.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| client side | path | MB/s | × direct | proxy CPU s/GB | client TLS |")
	fmt.Fprintln(w, "|---|---|---:|---:|---:|---|")
	for _, b := range r.Bulk {
		ratio := fmt.Sprintf("%.2f", b.Ratio)
		if b.Target.Path != pathDirect {
			ratio += fmt.Sprintf(" (%.2f–%.2f)", b.RatioLo, b.RatioHi)
		}
		fmt.Fprintf(w, "| %s | %s | %.0f | %s | %s | %s |\n", b.Target.Variant, pathName(b.Target),
			b.MBps, ratio, num(b.CPUPerGB, "%.2f"), dash(b.TLS))
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
	fmt.Fprintf(w, "\n### Idle sessions: TLS to the proxy, `LOGIN`, `SELECT INBOX`, `IDLE`; upstream go-imap's imapmemserver in a process of its own\n\n")
	fmt.Fprintln(w, "RSS of the proxy's processes (nginx: the sum over its workers), read once it has settled: at least", r.Settle, "after the last session opened, then until it moves less than 1% a second.")
	fmt.Fprintln(w, "*per session*: growth since before the first session, divided by the sessions (one-time costs of the first logins included);")
	fmt.Fprintln(w, "*marginal*: growth since the previous row, divided by the sessions added.")
	fmt.Fprintln(w, "A row a proxy could not reach shows the sessions it held instead (\"at N\"), read the same way.")
	fmt.Fprintln(w)
	fmt.Fprint(w, "| sessions |")
	for _, res := range r.Idle {
		p := res.Target.Path
		fmt.Fprintf(w, " %s KiB per session | %s KiB marginal | %s RSS MiB |", p, p, p)
	}
	fmt.Fprint(w, "\n|---:|")
	fmt.Fprint(w, strings.Repeat("---:|---:|---:|", len(r.Idle)))
	fmt.Fprintln(w)
	for i, asked := range idleRows(r.Idle) {
		fmt.Fprintf(w, "| %d |", asked)
		for _, res := range r.Idle {
			if i >= len(res.Levels) {
				fmt.Fprint(w, " – | – | – |")
				continue
			}
			l := res.Levels[i]
			at := ""
			if l.Sessions != l.Asked {
				at = fmt.Sprintf(" (at %d)", l.Sessions)
			}
			fmt.Fprintf(w, " %.1f%s | %.1f | %.0f |", l.PerSession/1024, at, l.Marginal/1024, float64(l.RSS)/(1<<20))
		}
		fmt.Fprintln(w)
	}
	r.renderIdleGo(w)
	fmt.Fprintln(w)
	for _, res := range r.Idle {
		fmt.Fprintf(w, "%s: RSS before the first session %.1f MiB; %d sessions answered DONE at the end, %d failed",
			res.Target.Path, float64(res.Base)/(1<<20), res.Held, res.Failed)
		if len(res.Files) > 0 {
			fmt.Fprintf(w, "; open files at the last row: %s", filesText(res.Files))
		}
		if res.Err != nil {
			fmt.Fprintf(w, "; broke off: %v", res.Err)
		}
		fmt.Fprintln(w, ".  ")
		if res.Stop != nil {
			fmt.Fprintf(w, "**%s stopped at %d of %d sessions**: %s.  \n", res.Target.Path, res.Stop.Held, res.Stop.Asked, res.Stop.why(res.Target.Path))
		}
	}
	if r.SessionsCut {
		fmt.Fprintf(w, "The driver, which holds the clients' sockets, could hold no more than the last row: its open-file limit is %d (the hard limit).  \n", r.FileLimit)
	}
}

// idleRows are the sessions each row of the idle tables asked for: the
// longest list of levels any proxy reached.
func idleRows(rs []idleResult) []int {
	var rows []int
	for _, res := range rs {
		if len(res.Levels) > len(rows) {
			rows = rows[:0]
			for _, l := range res.Levels {
				rows = append(rows, l.Asked)
			}
		}
	}
	return rows
}

// filesText is the open files of each process against its limit.
func filesText(us []fileUse) string {
	var parts []string
	for _, u := range us {
		parts = append(parts, fmt.Sprintf("%d of %d", u.Open, u.Limit))
	}
	if len(us) > 1 {
		return fmt.Sprintf("%d processes, %s", len(us), strings.Join(parts, ", "))
	}
	return strings.Join(parts, ", ")
}

// why says plainly what stopped a proxy's idle test: whose open-file
// limit it hit, if any, what its log said, and the last failure the
// clients saw.
func (s *idleStop) why(path string) string {
	var b strings.Builder
	if len(s.Full) == 0 {
		b.WriteString("no process involved was at its open-file limit")
	}
	for i, u := range s.Full {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%s (pid %d) had %d files open of its limit of %d", u.Who, u.Pid, u.Open, u.Limit)
		if u.Who == path || u.Who == "nginx worker" {
			b.WriteString(", two per session (client and upstream)")
		}
		if hard, err := hardFileLimit(); err == nil && uint64(u.Limit) >= hard {
			b.WriteString(", the hard limit of this machine, which no process here can raise")
		}
	}
	if s.LogLines > 0 {
		fmt.Fprintf(&b, "; its log has %d lines like `%s`", s.LogLines, strings.ReplaceAll(s.LogLine, "`", "'"))
	}
	fmt.Fprintf(&b, "; the clients' last failure: %v", s.Err)
	return b.String()
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

// renderTargets compares imapwhy with the targets, and shows nginx's
// figure for the same measure next to it.
func (r *report) renderTargets(w io.Writer) {
	fmt.Fprint(w, "\n### imapwhy against the targets (one instance), nginx alongside\n\n")
	fmt.Fprintln(w, "| target | imapwhy | met | nginx |")
	fmt.Fprintln(w, "|---|---|---|---|")
	row := func(name, measured string, ok bool, nginx string) {
		fmt.Fprintf(w, "| %s | %s | %s | %s |\n", name, measured, yes(ok), dash(nginx))
	}
	if b, ok := findBulk(r.Bulk, variantPlain, pathImapwhy); ok {
		ng := ""
		if n, ok := findBulk(r.Bulk, variantPlain, pathNginx); ok {
			ng = fmt.Sprintf("%.2f × direct", n.Ratio)
		}
		row(fmt.Sprintf("plaintext FETCH ≥ %.2f × direct", targetPlainRatio), fmt.Sprintf("%.2f × direct", b.Ratio), b.Ratio >= targetPlainRatio, ng)
	}
	if v, ok := bulkVersus(r.Bulk, variantTLS, pathImapwhy, pathNginx); ok {
		row("TLS FETCH ≥ nginx", fmt.Sprintf("%.2f × nginx", v), v >= 1, "")
	}
	if l, ok := firstLogin(r.Login, variantPlain, pathImapwhy); ok {
		ng := ""
		if n, ok := firstLogin(r.Login, variantPlain, pathNginx); ok {
			ng = fmt.Sprintf("%+.3f ms, %+.3f ms", ms(n.Added50), ms(n.AddedReady))
		}
		// Three decimals: the figures sit close to the target.
		row(fmt.Sprintf("added login latency p50 ≤ %.1f ms (plaintext, %d client)", ms(targetAddedLogin), l.Clients),
			fmt.Sprintf("%+.3f ms to the LOGIN OK, %+.3f ms to the first command's OK", ms(l.Added50), ms(l.AddedReady)),
			l.Added50 <= targetAddedLogin && l.AddedReady <= targetAddedLogin, ng)
	}
	iw, ok := findIdle(r.Idle, pathImapwhy)
	if !ok {
		return
	}
	ng, ngOK := findIdle(r.Idle, pathNginx)
	if len(iw.Levels) > 0 {
		last := iw.Levels[len(iw.Levels)-1]
		n := ""
		if ngOK && len(ng.Levels) > 0 {
			l := ng.Levels[len(ng.Levels)-1]
			n = fmt.Sprintf("%.1f KiB, %.1f marginal, at %d", l.PerSession/1024, l.Marginal/1024, l.Sessions)
		}
		row(fmt.Sprintf("≤ %d KiB per idle TLS session", targetIdleSession>>10),
			fmt.Sprintf("%.1f KiB per session, %.1f marginal, at %d sessions", last.PerSession/1024, last.Marginal/1024, last.Sessions),
			max(last.PerSession, last.Marginal) <= targetIdleSession, n)
	}
	n := ""
	if ngOK {
		n = r.heldText(ng)
	}
	row(fmt.Sprintf("%d idle sessions held without errors", targetIdleSessions),
		r.heldText(iw), iw.Held >= targetIdleSessions && iw.Failed == 0 && iw.Err == nil, n)
}

// heldText is how many idle sessions a proxy held and what stopped it.
func (r *report) heldText(res idleResult) string {
	s := fmt.Sprintf("%d held, %d failed", res.Held, res.Failed)
	switch {
	case res.Stop != nil && len(res.Stop.Full) > 0:
		u := res.Stop.Full[0]
		s += fmt.Sprintf("; stopped at %d by %s's open-file limit (%d open of %d)", res.Stop.Held, u.Who, u.Open, u.Limit)
	case res.Stop != nil:
		s += fmt.Sprintf("; stopped at %d (see the idle test)", res.Stop.Held)
	case res.Err != nil:
		s += "; broke off (see the idle test)"
	case r.SessionsCut:
		s += fmt.Sprintf(" (the driver's open-file limit here, %d, holds no more clients)", r.FileLimit)
	}
	if len(res.Files) > 1 {
		s += fmt.Sprintf(" over %d worker processes", len(res.Files))
	}
	return s
}

func findIdle(rs []idleResult, path string) (idleResult, bool) {
	for _, res := range rs {
		if res.Target.Path == path {
			return res, true
		}
	}
	return idleResult{}, false
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
