// Package metrics counts what the proxy does, for Prometheus, on a registry
// of its own (never the global one), and serves it with /healthz on the
// admin listener.
//
//	m := metrics.New()
//	admin, err := metrics.Serve("127.0.0.1:9143", m, nil)
//	srv, err := proxy.New(cfg, proxy.Options{Metrics: m, ...})
//	...
//	admin.Shutdown(ctx)
//
// Every method of a nil *Metrics does nothing, so that callers need no
// checks when metrics are off. Labels carry cause IDs, provider IDs and
// fixed words only: never a user name, an address or anything typed.
package metrics

import (
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

const namespace = "imapwhy"

// Values of the result label of logins_total and upstream_login_seconds.
const (
	ResultSuccess = "success"
	ResultFailure = "failure"
)

// Values of the direction label of forwarded_bytes_total.
const (
	ToUpstream = "to_upstream"
	ToClient   = "to_client"
)

// unknownProvider labels failures whose provider was not recognised.
const unknownProvider = "unknown"

// Metrics are the proxy's metrics. Create them with New.
type Metrics struct {
	reg *prometheus.Registry

	logins      *prometheus.CounterVec
	failures    *prometheus.CounterVec
	saved       prometheus.Counter
	refused     prometheus.Counter
	sessions    prometheus.Gauge
	bytes       *prometheus.CounterVec
	dialSeconds prometheus.Histogram
	loginSecs   *prometheus.HistogramVec
	gw          *gateway // gateway.go
	parkedFrom  atomic.Pointer[func() int64]
}

// New makes the metrics on a new registry, with the Go runtime and process
// collectors.
func New() *Metrics {
	m := &Metrics{
		reg:      prometheus.NewRegistry(),
		logins:   counterVec("logins_total", "Logins answered, by result (success, failure).", "result"),
		failures: counterVec("login_failures_total", "Failed logins by diagnosed cause and recognised provider (unknown if none).", "cause", "provider"),
		saved:    counter("shield_saved_attempts_total", "Logins answered from history instead of being sent to the upstream (the shield held them)."),
		refused:  counter("connections_refused_total", "Connections answered with BYE at once: too many from the client's address."),
		sessions: gauge("sessions_active", "Logged-in sessions being forwarded now."),
		bytes: counterVec("forwarded_bytes_total",
			"Bytes forwarded after login, by direction (to_upstream, to_client); added when a session ends.", "direction"),
		dialSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace, Name: "upstream_dial_seconds",
			Help:    "Time to open the TCP connection to the upstream (DNS included), failed dials too.",
			Buckets: []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
		loginSecs: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "upstream_login_seconds",
			Help:    "Time from the start of the dial (on a connection made before the login: from the login) to the upstream's answer to the login, by result.",
			Buckets: []float64{.01, .05, .1, .25, .5, 1, 2, 4, 8, 16, 32},
		}, []string{"result"}),
	}
	parked := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: namespace, Name: "forwarding_parked",
		Help: "Directions of forwarded sessions that wait for data without a goroutine (quiet for a second or more; two per idle session).",
	}, func() float64 {
		if read := m.parkedFrom.Load(); read != nil {
			return float64((*read)())
		}
		return 0
	})
	m.reg.MustRegister(m.logins, m.failures, m.saved, m.refused, m.sessions, m.bytes, m.dialSeconds, m.loginSecs, parked,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// Known label values start at zero, so that rates work from the start.
	for _, r := range []string{ResultSuccess, ResultFailure} {
		m.logins.WithLabelValues(r)
		m.loginSecs.WithLabelValues(r)
	}
	m.bytes.WithLabelValues(ToUpstream)
	m.bytes.WithLabelValues(ToClient)
	m.gw = newGateway(m.reg)
	return m
}

// counter, counterVec and gauge make a metric named imapwhy_<name>.
func counter(name, help string) prometheus.Counter {
	return prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: name, Help: help})
}

func counterVec(name, help string, labels ...string) *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: name, Help: help}, labels)
}

func gauge(name, help string) prometheus.Gauge {
	return prometheus.NewGauge(prometheus.GaugeOpts{Namespace: namespace, Name: name, Help: help})
}

// Registry is the registry the metrics are on, for tests and for adding
// collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// LoginSucceeded counts a login the upstream accepted.
func (m *Metrics) LoginSucceeded() {
	if m == nil {
		return
	}
	m.logins.WithLabelValues(ResultSuccess).Inc()
}

// LoginFailed counts a login answered with NO, by diagnosed cause and
// provider ID ("" when unknown).
func (m *Metrics) LoginFailed(cause, provider string) {
	if m == nil {
		return
	}
	if provider == "" {
		provider = unknownProvider
	}
	m.logins.WithLabelValues(ResultFailure).Inc()
	m.failures.WithLabelValues(cause, provider).Inc()
}

// AttemptSaved counts a login the shield answered from history.
func (m *Metrics) AttemptSaved() {
	if m == nil {
		return
	}
	m.saved.Inc()
}

// ConnectionRefused counts a connection refused for the per-address limit.
func (m *Metrics) ConnectionRefused() {
	if m == nil {
		return
	}
	m.refused.Inc()
}

// CountParked makes forwarding_parked read its value from read.
func (m *Metrics) CountParked(read func() int64) {
	if m == nil {
		return
	}
	m.parkedFrom.Store(&read)
}

// SessionStarted counts a session that is now forwarded.
func (m *Metrics) SessionStarted() {
	if m == nil {
		return
	}
	m.sessions.Inc()
}

// SessionEnded counts the end of a forwarded session and its bytes.
func (m *Metrics) SessionEnded(toUpstream, toClient int64) {
	if m == nil {
		return
	}
	m.sessions.Dec()
	m.bytes.WithLabelValues(ToUpstream).Add(float64(toUpstream))
	m.bytes.WithLabelValues(ToClient).Add(float64(toClient))
}

// UpstreamDial observes one dial to an upstream.
func (m *Metrics) UpstreamDial(d time.Duration) {
	if m == nil {
		return
	}
	m.dialSeconds.Observe(d.Seconds())
}

// UpstreamLogin observes one upstream login, dial included.
func (m *Metrics) UpstreamLogin(d time.Duration, ok bool) {
	if m == nil {
		return
	}
	r := ResultFailure
	if ok {
		r = ResultSuccess
	}
	m.loginSecs.WithLabelValues(r).Observe(d.Seconds())
}
