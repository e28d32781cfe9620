package diagnose

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCleanUsername(t *testing.T) {
	long := strings.Repeat("a", 8192) + "@example.com"
	for _, tt := range []struct {
		in, want string
		valid    bool
	}{
		{"alice@example.com", "alice@example.com", true},
		{"山田@example.jp", "山田@example.jp", true},
		{"alice\r\nevent: forged", "alice\uFFFD\uFFFDevent: forged", false},
		{"\u202eelgoog@evil.example", "\uFFFDelgoog@evil.example", false},
		{"al\u200bice@example.com", "al\uFFFDice@example.com", false},
		{"a\x00b\x7f\u0085\u2028", "a\uFFFDb\uFFFD\uFFFD\uFFFD", false},
		{"bad\xffutf8", "bad\uFFFDutf8", false},
	} {
		if got := CleanUsername(tt.in); got != tt.want {
			t.Errorf("CleanUsername(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if ValidUsername(tt.in) != tt.valid {
			t.Errorf("ValidUsername(%q) = %v", tt.in, !tt.valid)
		}
	}
	got := CleanUsername(long)
	if ValidUsername(long) || len(got) > MaxUsernameLen || !strings.HasSuffix(got, "…") || !utf8.ValidString(got) {
		t.Errorf("an 8 KB name: valid %v, cleaned to %d bytes", ValidUsername(long), len(got))
	}
	if got := CleanUsername(strings.Repeat("山", 200)); len(got) > MaxUsernameLen || !utf8.ValidString(got) {
		t.Errorf("cut inside a character: %q", got)
	}
}
