package proxy

import (
	"fmt"
	"strings"
	"testing"
)

// TestAlertOncePerDiagnosis: a client that retries on the same connection
// (Thunderbird's LOGIN after AUTHENTICATE PLAIN, neomutt's three tries) is
// shown the ALERT once for the same diagnosis of the same password; later
// refusals carry the NO only. Another password is a new failure.
func TestAlertOncePerDiagnosis(t *testing.T) {
	up := startMemUpstream(t, map[string]string{"taro@corp.test": "pw"}).Addr
	s, _ := startAutoServer(t, fmt.Sprintf("routes:\n  - {domain: corp.test, upstream: {address: %q, tls: none}}\n", up), Options{})
	tc := dialTestClient(t, s.Addrs()[0])
	try := func(tag, cmd string) (alert bool, no string) {
		tc.Send(tag + " " + cmd + "\r\n")
		lines := tc.Until(tag + " ")
		for _, l := range lines {
			alert = alert || strings.HasPrefix(l, "* OK [ALERT] ")
		}
		return alert, lines[len(lines)-1]
	}
	// AUTHENTICATE PLAIN, then LOGIN, with the same wrong password.
	if alert, no := try("a1", "AUTHENTICATE PLAIN AHRhcm9AY29ycC50ZXN0AHdyb25n"); !alert || !strings.HasPrefix(no, "a1 NO ") {
		t.Fatalf("first refusal: alert %v, %q", alert, no)
	}
	alert, no := try("a2", `LOGIN taro@corp.test wrong`)
	if alert || !strings.HasPrefix(no, "a2 NO [AUTHENTICATIONFAILED] ") {
		t.Errorf("same password again: alert %v, %q", alert, no)
	}
	if alert, _ := try("a3", `LOGIN taro@corp.test other`); !alert {
		t.Error("another password: no ALERT")
	}
	// A second connection is a new start: it is shown the ALERT again.
	tc = dialTestClient(t, s.Addrs()[0])
	if alert, _ := try("b1", `LOGIN taro@corp.test wrong`); !alert {
		t.Error("a new connection: no ALERT")
	}
}
