package diagnose

import "testing"

func TestRecognize(t *testing.T) {
	tests := []struct {
		name   string
		o      Observation
		wantID string
		kind   ProviderKind
	}{
		{"by host", Observation{Host: "imap.gmail.com"}, "gmail", KindProvider},
		{"by server name", Observation{Host: "142.250.1.108", ServerName: "imap.gmail.com"}, "gmail", KindProvider},
		{"by greeting", Observation{Host: "127.0.0.1", Greeting: "* OK [CAPABILITY IMAP4rev1 SASL-IR] Dovecot (Debian) ready."}, "dovecot", KindSoftware},
		{"by capability", Observation{Host: "mail.example.test", Capabilities: []string{"IMAP4REV1", "X-GM-EXT-1"}}, "gmail", KindProvider},
		{"provider before software", Observation{Host: "imap.gmail.com", Greeting: "* OK Dovecot ready."}, "gmail", KindProvider},
		{"shared servers, by user domain", Observation{Host: "outlook.office365.com", Typed: Typed{Username: "alice@hotmail.com"}}, "outlook", KindProvider},
		{"user domain alone", Observation{Typed: Typed{Username: "alice@gmail.com"}}, "gmail", KindProvider},
		{"unknown", Observation{Host: "imap.example.test", Greeting: "* OK IMAP ready"}, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, ok := Recognize(tc.o)
			if ok != (tc.wantID != "") || p.ID != tc.wantID || p.Kind != tc.kind {
				t.Errorf("Recognize = %q (%s) %v, want %q (%s)", p.ID, p.Kind, ok, tc.wantID, tc.kind)
			}
		})
	}
}
