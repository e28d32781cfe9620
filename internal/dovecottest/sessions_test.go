package dovecottest

import (
	"strings"
	"testing"
)

// TestMaxSessionsConf: Options.MaxSessions raises the imap service's limits
// so that its processes serve several sessions each; 0 leaves Dovecot's
// defaults. (internal/loadtest runs thousands of sessions on it.)
func TestMaxSessionsConf(t *testing.T) {
	for _, tc := range []struct {
		max  int
		want []string
	}{
		{0, nil},
		{2000, []string{"default_client_limit = 3000", "process_limit = 42", "client_limit = 50", "service_count = 0"}},
	} {
		conf, err := renderConf(confData{Sessions: sessionLimits(tc.max)})
		if err != nil {
			t.Fatal(err)
		}
		text := string(conf)
		for _, w := range tc.want {
			if !strings.Contains(text, w) {
				t.Errorf("MaxSessions %d: %q missing", tc.max, w)
			}
		}
		if tc.max == 0 && (strings.Contains(text, "default_client_limit") || strings.Contains(text, "service imap {")) {
			t.Errorf("MaxSessions 0 changed Dovecot's limits:\n%s", text)
		}
	}
	if _, err := (&Server{}).renderConf(Options{MaxSessions: -1}, 1, 2, 0); err == nil {
		t.Error("a negative MaxSessions was accepted")
	}
}
