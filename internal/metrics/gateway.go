package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// gateway are the metrics of an instance among several: its shared state
// and its certificate, for the alerting rules in configs/monitoring.
type gateway struct {
	degraded    prometheus.Gauge
	stateErrors *prometheus.CounterVec
	badHeaders  prometheus.Counter
	predials    *prometheus.CounterVec
}

// Outcomes of a connection made to the upstream before the client's login
// (the predial label of upstream_predials_total).
const (
	PredialUsed   = "used"   // the client's login went over it
	PredialUnused = "unused" // closed with LOGOUT: no login came, or not one for it
	PredialStale  = "stale"  // the upstream closed it or spoke first: the login dialled anew
	PredialFailed = "failed" // it could not be made: the login dialled (and diagnosed) anew
)

func newGateway(reg *prometheus.Registry) *gateway {
	g := &gateway{
		degraded: gauge("state_degraded",
			"1 while the shared state (Redis) cannot be reached and this instance goes on with its own memory, 0 otherwise."),
		stateErrors: counterVec("state_errors_total",
			"Shared state (Redis) operations that failed or timed out, by kind (history, limit, incident, ping).", "kind"),
		badHeaders: counter("proxy_header_refused_total",
			"Connections from a trusted load balancer closed for a missing or malformed PROXY header."),
		predials: counterVec("upstream_predials_total",
			"Upstream connections made before the client's login (upstream.predial), by outcome (used, unused, stale, failed).", "outcome"),
	}
	for _, o := range []string{PredialUsed, PredialUnused, PredialStale, PredialFailed} {
		g.predials.WithLabelValues(o)
	}
	reg.MustRegister(g.degraded, g.stateErrors, g.badHeaders, g.predials)
	return g
}

// StateDegraded sets whether this instance works without its shared state.
func (m *Metrics) StateDegraded(on bool) {
	if m == nil {
		return
	}
	v := 0.0
	if on {
		v = 1
	}
	m.gw.degraded.Set(v)
}

// StateError counts a failed shared state operation of one kind.
func (m *Metrics) StateError(kind string) {
	if m == nil {
		return
	}
	m.gw.stateErrors.WithLabelValues(kind).Inc()
}

// ProxyHeaderRefused counts a trusted source's connection closed for its
// PROXY header.
func (m *Metrics) ProxyHeaderRefused() {
	if m == nil {
		return
	}
	m.gw.badHeaders.Inc()
}

// Predial counts the outcome of one upstream connection made before the
// client's login (PredialUsed, ...).
func (m *Metrics) Predial(outcome string) {
	if m == nil {
		return
	}
	m.gw.predials.WithLabelValues(outcome).Inc()
}

// WatchCertificate exports when the served certificate expires, as read
// from notAfter at each scrape (zero: no certificate, not exported as a
// time).
func (m *Metrics) WatchCertificate(notAfter func() time.Time) {
	if m == nil {
		return
	}
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: namespace, Name: "certificate_expiry_timestamp_seconds",
		Help: "When the certificate served to mail apps expires (Unix seconds).",
	}, func() float64 {
		t := notAfter()
		if t.IsZero() {
			return 0
		}
		return float64(t.Unix())
	}))
}
