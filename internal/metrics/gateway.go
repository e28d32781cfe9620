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
}

func newGateway(reg *prometheus.Registry) *gateway {
	g := &gateway{
		degraded: gauge("state_degraded",
			"1 while the shared state (Redis) cannot be reached and this instance goes on with its own memory, 0 otherwise."),
		stateErrors: counterVec("state_errors_total",
			"Shared state (Redis) operations that failed or timed out, by kind (history, limit, incident, ping).", "kind"),
		badHeaders: counter("proxy_header_refused_total",
			"Connections from a trusted load balancer closed for a missing or malformed PROXY header."),
	}
	reg.MustRegister(g.degraded, g.stateErrors, g.badHeaders)
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
