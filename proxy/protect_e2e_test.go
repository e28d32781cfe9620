package proxy_test

// The shield end to end against a real Dovecot: the password is
// changed in Dovecot's passwd-file; the old one is then explained as
// credentials.password_changed, the Caps-Lock-inverted new one as
// credentials.caps_lock, and the old one sent again and again is held back
// after forwarded_tries. The history file, the log and the metrics are
// searched for the passwords.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imapwhy/imapwhy/diagnose"
	"github.com/imapwhy/imapwhy/internal/config"
	"github.com/imapwhy/imapwhy/internal/dovecottest"
	"github.com/imapwhy/imapwhy/internal/metrics"
	"github.com/imapwhy/imapwhy/internal/shield"
	"github.com/imapwhy/imapwhy/proxy"
)

func TestDovecotShieldHistory(t *testing.T) {
	const (
		user   = "dana"
		oldPW  = "Kirsche-2026"
		newPW  = "Pflaume-2027"
		capsPW = "pFLAUME-2027"
	)
	dc := dovecottest.Start(t, dovecottest.Options{})
	if err := dc.AddUser(user, oldPW); err != nil {
		t.Fatal(err)
	}
	state := t.TempDir()
	cfg, err := config.Parse(strings.NewReader(fmt.Sprintf(`
state_dir: %s
log: {level: debug}
listeners:
  - address: 127.0.0.1:0
    tls: none
    upstream: {address: %q, tls: implicit, server_name: localhost}
limits: {failure_delay_base: 10ms, failure_delay_max: 20ms}
shield: {store: file}
`, state, dc.IMAPS)))
	if err != nil {
		t.Fatal(err)
	}
	sh, err := shield.Open(cfg.Shield, cfg.StateDir, shield.Options{OnError: func(err error) { t.Errorf("shield: %v", err) }})
	if err != nil {
		t.Fatal(err)
	}
	m := metrics.New()
	logs := &lockedBuffer{}
	t.Cleanup(func() { sh.Close() }) // after the proxy's shutdown
	srv := startE2EProxy(t, cfg, proxy.Options{UpstreamRoots: dc.CAPool, Shield: sh, Metrics: m}, logs)
	admin, err := metrics.Serve("127.0.0.1:0", m, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Shutdown(context.Background()) })

	login := func(t *testing.T, pw string) (tagged string, ev map[string]string) {
		t.Helper()
		before := len(logs.events("auth_failure"))
		c, err := net.DialTimeout("tcp", srv.Addrs()[0].String(), e2eTimeout)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(e2eTimeout))
		rc := newRawConn(t, c)
		rc.Greeting()
		lines := rc.Command(fmt.Sprintf("a LOGIN %s %s", user, pw))
		tagged = lines[len(lines)-1]
		if strings.HasPrefix(tagged, "a OK") {
			rc.Command("b LOGOUT")
			return tagged, nil
		}
		deadline := time.Now().Add(5 * time.Second)
		for len(logs.events("auth_failure")) == before {
			if time.Now().After(deadline) {
				t.Fatal("no auth_failure event")
			}
			time.Sleep(10 * time.Millisecond)
		}
		evs := logs.events("auth_failure")
		return tagged, logFields(evs[len(evs)-1])
	}
	wantCause := func(t *testing.T, pw string, cause diagnose.Cause) {
		t.Helper()
		got, ev := login(t, pw)
		if !strings.HasPrefix(got, "a NO [AUTHENTICATIONFAILED] ") || ev["cause"] != string(cause) {
			t.Errorf("answer %q, logged %v; want %s", got, ev, cause)
		}
	}

	if got, _ := login(t, oldPW); !strings.HasPrefix(got, "a OK") {
		t.Fatalf("login with the first password: %q", got)
	}
	if err := dc.SetPassword(user, newPW); err != nil {
		t.Fatal(err)
	}
	wantCause(t, oldPW, diagnose.CauseCredentialsPasswordChanged)
	if got, _ := login(t, newPW); !strings.HasPrefix(got, "a OK") {
		t.Fatalf("login with the new password: %q", got)
	}
	wantCause(t, capsPW, diagnose.CauseCredentialsCapsLock)
	// The old password twice more reaches Dovecot (three tries in all),
	// then it is held.
	wantCause(t, oldPW, diagnose.CauseCredentialsPasswordChanged)
	wantCause(t, oldPW, diagnose.CauseCredentialsPasswordChanged)
	// Held: still the diagnosis of Dovecot's refusal of this password,
	// and the client is told it was not sent again.
	if got, ev := login(t, oldPW); ev["cause"] != string(diagnose.CauseCredentialsPasswordChanged) || !strings.Contains(got, "did not send it again") {
		t.Errorf("held: answer %q, logged %v", got, ev)
	}
	if got, _ := login(t, newPW); !strings.HasPrefix(got, "a OK") {
		t.Fatalf("the new password after the old was held: %q", got)
	}

	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + admin.Addr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for series, want := range map[string]string{
		`imapwhy_shield_saved_attempts_total`:                                                   "1",
		`imapwhy_logins_total{result="success"}`:                                                "3",
		`imapwhy_upstream_login_seconds_count{result="failure"}`:                                "4",
		`imapwhy_login_failures_total{cause="credentials.caps_lock",provider="dovecot"}`:        "1",
		`imapwhy_login_failures_total{cause="credentials.password_changed",provider="dovecot"}`: "3",
	} {
		if got := sample(string(body), series); got != want {
			t.Errorf("%s = %q, want %s", series, got, want)
		}
	}

	// No password anywhere: the history file, the log, the metrics.
	db, err := os.ReadFile(filepath.Join(state, "history.db"))
	if err != nil {
		t.Fatal(err)
	}
	for _, pw := range []string{oldPW, newPW, capsPW} {
		for where, text := range map[string]string{"history file": string(db), "log": logs.String(), "metrics": string(body)} {
			if strings.Contains(text, pw) {
				t.Errorf("%s contains the password %q", where, pw)
			}
		}
	}
	if strings.Contains(string(db), user) {
		t.Error("the history file names the user")
	}
}

// logFields decodes the string fields of a JSON log line.
func logFields(line string) map[string]string {
	var m map[string]any
	json.Unmarshal([]byte(line), &m)
	out := map[string]string{}
	for k, v := range m {
		if s, ok := v.(string); ok {
			out[k] = s
		}
	}
	return out
}

// sample is the value of one series in a text exposition, "" if absent.
func sample(body, series string) string {
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			return v
		}
	}
	return ""
}
