package setup

import (
	"regexp"
	"strings"
	"testing"

	"github.com/imapwhy/imapwhy/internal/testkit"
)

// drawnFingerprint writes out the CA fingerprint as drawn, a "|" where a
// line ends.
const drawnFingerprint = `
  var walker = d.createTreeWalker(d.querySelector(".fingerprint code"), NodeFilter.SHOW_TEXT);
  var drawn = "", top = null, n;
  while ((n = walker.nextNode())) {
    for (var i = 0; i < n.data.length; i++) {
      var r = d.createRange();
      r.setStart(n, i);
      r.setEnd(n, i + 1);
      var rect = r.getClientRects()[0];
      if (!rect) { continue; }
      if (top !== null && rect.top > top + 2) { drawn += "|"; }
      top = rect.top;
      drawn += n.data[i];
    }
  }
  return drawn;`

// TestFingerprintAtPhoneWidth: on a phone the CA fingerprint wraps
// between its groups, never inside one, so each line can be compared
// group by group with what the phone shows.
func TestFingerprintAtPhoneWidth(t *testing.T) {
	r := newRig(t)
	group := regexp.MustCompile(`^([0-9A-F]{2}:)*[0-9A-F]{2}:?$`)
	for _, lang := range []string{"en", "ja"} {
		_, body := get(t, r.srv.URL+"/setup?email=hanako@docomo.ne.jp&lang="+lang)
		drawn := testkit.MeasureAtPhoneWidth(t, body, drawnFingerprint)
		lines := strings.Split(drawn, "|")
		if strings.ReplaceAll(strings.Join(lines, ""), " ", "") != strings.ReplaceAll(r.cm.Fingerprint(), " ", "") {
			t.Fatalf("%s: drawn %q, not the fingerprint %q", lang, drawn, r.cm.Fingerprint())
		}
		if len(lines) < 2 {
			t.Fatalf("%s: the fingerprint fits one line (%q): nothing tested", lang, drawn)
		}
		for i, l := range lines[1:] {
			if !group.MatchString(strings.TrimSpace(l)) {
				t.Errorf("%s: line %d of the fingerprint is %q: a group is cut (all lines: %q)", lang, i+2, l, lines)
			}
		}
	}
}
