package reconcile

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// TestHandler serves /healthz (503 until Run works, 200 while it does)
// and /metrics, which parses as the Prometheus text format and counts the
// repairs done.
func TestHandler(t *testing.T) {
	w := newWorld(t, "node1")
	inst := w.add("web", 0, "node1", instanceOptions{})
	w.save()
	r := w.reconciler(Options{Metrics: NewMetrics()})
	srv := httptest.NewServer(r.Handler())
	defer srv.Close()

	if code, body := get(t, srv.URL+"/healthz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "not running") {
		t.Errorf("/healthz before Run: %d %q", code, body)
	}
	w.startDaemon(r, "node1")
	if code, body := get(t, srv.URL+"/healthz"); code != http.StatusOK || body != "ok\n" {
		t.Errorf("/healthz while running: %d %q", code, body)
	}
	w.fakes["node1"].StopContainer(t.Context(), inst.ContainerID, 0)
	w.nextAction()

	code, body := get(t, srv.URL+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d", code)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("/metrics does not parse: %v\n%s", err, body)
	}
	for _, name := range []string{
		"dockplan_reconcile_actions_total", "dockplan_reconcile_events_total", "dockplan_reconcile_host_up",
		"dockplan_reconcile_instances", "dockplan_reconcile_recovery_seconds",
		"dockplan_reconcile_last_resync_timestamp_seconds", "dockplan_reconcile_backoffs_waiting",
		"dockplan_reconcile_backoff_seconds", "dockplan_reconcile_state_serial", "process_resident_memory_bytes",
	} {
		if families[name] == nil {
			t.Errorf("/metrics has no %s", name)
		}
	}
	actions := families["dockplan_reconcile_actions_total"].GetMetric()
	if len(actions) != 1 || actions[0].GetCounter().GetValue() != 1 {
		t.Errorf("actions_total = %v, want one start counted", actions)
	}
	labels := map[string]string{}
	for _, l := range actions[0].GetLabel() {
		labels[l.GetName()] = l.GetValue()
	}
	if labels["kind"] != "start" || labels["host"] != "node1" || labels["result"] != "ok" {
		t.Errorf("actions_total labels = %v", labels)
	}
	if n := families["dockplan_reconcile_recovery_seconds"].GetMetric()[0].GetHistogram().GetSampleCount(); n != 1 {
		t.Errorf("recovery_seconds counted %d recoveries, want 1", n)
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}
