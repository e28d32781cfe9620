package metrics

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"
)

// monitoringDir holds the alerting rules and the dashboard admins load.
var monitoringDir = filepath.Join("..", "..", "configs", "monitoring")

// TestAlertRules checks the rules with Prometheus's own checker and runs
// their unit tests (alerts_test.yml: each alert fires on what it is for).
func TestAlertRules(t *testing.T) {
	if _, err := exec.LookPath("promtool"); err != nil {
		t.Fatal("promtool not found (apt-get install prometheus; scripts/test installs it)")
	}
	for _, args := range [][]string{
		{"check", "rules", "alerts.yml"},
		{"test", "rules", "alerts_test.yml"},
	} {
		cmd := exec.Command("promtool", args...)
		cmd.Dir = monitoringDir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// metricName finds imapwhy's metric names in PromQL.
var metricName = regexp.MustCompile(`\bimapwhy_[a-z0-9_]+`)

// TestMonitoringUsesExportedMetrics: every metric the rules and the
// dashboard use is one imapwhy exports.
func TestMonitoringUsesExportedMetrics(t *testing.T) {
	m := New()
	m.WatchCertificate(func() time.Time { return time.Now().Add(time.Hour) })
	// Vectors show only once a label value exists.
	m.LoginFailed("credentials.rejected", "")
	m.StateError("history")
	families, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	exported := map[string]bool{}
	for _, f := range families {
		n := f.GetName()
		exported[n] = true
		for _, s := range []string{"_bucket", "_sum", "_count"} {
			exported[n+s] = true
		}
	}
	used := map[string][]string{}
	rules, err := os.ReadFile(filepath.Join(monitoringDir, "alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range metricName.FindAllString(string(rules), -1) {
		used[n] = append(used[n], "alerts.yml")
	}
	raw, err := os.ReadFile(filepath.Join(monitoringDir, "grafana-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("grafana-dashboard.json: %v", err)
	}
	if len(dash.Panels) == 0 {
		t.Fatal("the dashboard has no panels")
	}
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("dashboard panel %q queries nothing", p.Title)
		}
		for _, q := range p.Targets {
			for _, n := range metricName.FindAllString(q.Expr, -1) {
				used[n] = append(used[n], "dashboard "+p.Title)
			}
		}
	}
	var names []string
	for n := range used {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if !exported[n] {
			t.Errorf("%s (used by %s) is not exported", n, strings.Join(used[n], ", "))
		}
	}
	for _, want := range []string{"imapwhy_login_failures_total", "imapwhy_shield_saved_attempts_total",
		"imapwhy_state_degraded", "imapwhy_certificate_expiry_timestamp_seconds"} {
		if len(used[want]) == 0 {
			t.Errorf("no rule or panel uses %s", want)
		}
	}
}

// TestProbes: /healthz says degraded (200: logins work) while shared
// state is away, /readyz fails while draining.
func TestProbes(t *testing.T) {
	var degraded string
	var draining bool
	a, err := ServeProbes("127.0.0.1:0", New(), Probes{
		Degraded: func() string { return degraded },
		Draining: func() bool { return draining },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	base := "http://" + a.Addr().String()
	check := func(path string, wantCode int, wantBody string) {
		t.Helper()
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != wantCode || !strings.HasPrefix(string(b), wantBody) {
			t.Errorf("%s: %d %q, want %d %q", path, resp.StatusCode, b, wantCode, wantBody)
		}
	}
	check("/healthz", 200, "ok")
	check("/readyz", 200, "ready")
	degraded = "Redis unreachable"
	check("/healthz", 200, "degraded: Redis unreachable")
	check("/readyz", 200, "ready")
	draining = true
	check("/readyz", 503, "draining")
}
