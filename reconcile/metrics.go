package reconcile

import (
	"fmt"
	"net/http"
	"time"

	"github.com/dockplan/dockplan/engine"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metricPrefix starts every metric name.
const metricPrefix = "dockplan_reconcile_"

// Metrics are the reconciler's Prometheus metrics, in a registry of their
// own (with the Go runtime and process collectors). A nil *Metrics is
// valid and records nothing. docs/reconcile.md lists them.
type Metrics struct {
	reg *prometheus.Registry

	actions      *prometheus.CounterVec
	events       *prometheus.CounterVec
	hostUp       *prometheus.GaugeVec
	instances    *prometheus.GaugeVec
	recovery     prometheus.Histogram
	lastResync   *prometheus.GaugeVec
	waiting      prometheus.Gauge
	backoffDelay *prometheus.GaugeVec
	serial       prometheus.Gauge
	reschedules  *prometheus.CounterVec
	staleRemoved *prometheus.CounterVec
}

// NewMetrics returns the metrics, registered in a new registry.
func NewMetrics() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		actions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricPrefix + "actions_total",
			Help: "Repairs made, by kind (start, recreate, restart), host and result (ok, error).",
		}, []string{"kind", "host", "result"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricPrefix + "events_total",
			Help: "Container events received from the engines for the project's containers, by host and action.",
		}, []string{"host", "action"}),
		hostUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: metricPrefix + "host_up",
			Help: "1 when the host answered its last listing and its event stream is open, 0 when it does not answer.",
		}, []string{"host"}),
		instances: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: metricPrefix + "instances",
			Help: "Instances of the state by status when last seen (running, stopped, missing, unhealthy, unknown).",
		}, []string{"status"}),
		recovery: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    metricPrefix + "recovery_seconds",
			Help:    "Seconds from noticing an instance down (event or listing) to its container running again, backoff waits included.",
			Buckets: []float64{0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600},
		}),
		lastResync: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: metricPrefix + "last_resync_timestamp_seconds",
			Help: "Unix time of the last full listing of the host.",
		}, []string{"host"}),
		waiting: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: metricPrefix + "backoffs_waiting",
			Help: "Instances whose repair waits for their crash-loop backoff to end.",
		}),
		backoffDelay: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: metricPrefix + "backoff_seconds",
			Help: "Crash-loop backoff in force per instance: the wait after its last repair before another one (absent once reset).",
		}, []string{"address", "host"}),
		serial: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: metricPrefix + "state_serial",
			Help: "Serial of the state the reconciler works from.",
		}),
	}
	m.reschedules = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: metricPrefix + "reschedules_total",
		Help: "Moves of a lost host's instances to other hosts (--reschedule-after), by lost host and result (ok, error).",
	}, []string{"host", "result"})
	m.staleRemoved = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: metricPrefix + "stale_removed_total",
		Help: "Stale copies removed from a host that answered again after its instances were moved away, by host.",
	}, []string{"host"})
	m.reg.MustRegister(m.reschedules, m.staleRemoved)
	m.reg.MustRegister(m.actions, m.events, m.hostUp, m.instances, m.recovery, m.lastResync,
		m.waiting, m.backoffDelay, m.serial,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, s := range statusNames {
		m.instances.WithLabelValues(s).Set(0)
	}
	return m
}

// Registry returns the registry holding the metrics.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

func (m *Metrics) action(a Action) {
	if m == nil || a.Kind == ActionNone {
		return
	}
	result := "ok"
	if a.Err != nil {
		result = "error"
	} else {
		m.recovery.Observe(a.Recovery.Seconds())
	}
	m.actions.WithLabelValues(a.Kind.String(), a.Host, result).Inc()
}

func (m *Metrics) event(host string, action engine.EventAction) {
	if m != nil {
		m.events.WithLabelValues(host, action.String()).Inc()
	}
}

func (m *Metrics) setHostUp(host string, up bool) {
	if m == nil {
		return
	}
	v := 0.0
	if up {
		v = 1
	}
	m.hostUp.WithLabelValues(host).Set(v)
}

func (m *Metrics) forgetHost(host string) {
	if m != nil {
		m.hostUp.DeleteLabelValues(host)
		m.lastResync.DeleteLabelValues(host)
	}
}

func (m *Metrics) setInstances(counts map[Status]int) {
	if m == nil {
		return
	}
	for i, s := range statusNames {
		m.instances.WithLabelValues(s).Set(float64(counts[Status(i)]))
	}
}

func (m *Metrics) resynced(host string, at time.Time) {
	if m != nil {
		m.lastResync.WithLabelValues(host).Set(float64(at.UnixNano()) / 1e9)
	}
}

func (m *Metrics) setWaiting(n int) {
	if m != nil {
		m.waiting.Set(float64(n))
	}
}

func (m *Metrics) setBackoff(addr, host string, delay time.Duration) {
	if m != nil {
		m.backoffDelay.DeletePartialMatch(prometheus.Labels{"address": addr})
		m.backoffDelay.WithLabelValues(addr, host).Set(delay.Seconds())
	}
}

func (m *Metrics) forgetBackoff(addr string) {
	if m != nil {
		m.backoffDelay.DeletePartialMatch(prometheus.Labels{"address": addr})
	}
}

func (m *Metrics) setSerial(serial int64) {
	if m != nil {
		m.serial.Set(float64(serial))
	}
}

// Handler serves the daemon's HTTP endpoints: /metrics (the Prometheus
// text format; nothing but the Go and process metrics when the reconciler
// has no Metrics) and /healthz (200 "ok" while Run works with a readable
// state, else 503 with the reason).
func (r *Reconciler) Handler() http.Handler {
	mux := http.NewServeMux()
	reg := prometheus.NewRegistry()
	if r.opts.Metrics != nil {
		reg = r.opts.Metrics.reg
	}
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if err := r.Health(); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, "unhealthy: %v\n", err)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	return mux
}

func (m *Metrics) rescheduled(host, result string) {
	if m != nil {
		m.reschedules.WithLabelValues(host, result).Inc()
	}
}

func (m *Metrics) removedStale(host string) {
	if m != nil {
		m.staleRemoved.WithLabelValues(host).Inc()
	}
}
