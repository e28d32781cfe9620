package incident

import (
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/imapwhy/imapwhy/internal/testkit"
)

// measureRow reports, for the first failure listed on the status page, on
// how many lines the user name is drawn, how wide the message is, how wide
// the page is, and whether the cause code is shown.
const measureRow = `
  var cells = d.querySelector("table tbody tr").querySelectorAll("td");
  var r = d.createRange();
  r.selectNodeContents(cells[1]);
  return "user-lines=" + r.getClientRects().length +
    " message-width=" + Math.round(cells[2].getBoundingClientRect().width) +
    " page-width=" + d.documentElement.scrollWidth + " viewport=" + w.innerWidth +
    " cause-shown=" + (cells[3].getClientRects().length > 0);`

// TestStatusPageAtPhoneWidth renders the status page in headless Chromium
// as a phone shows it (390 px): the user name stays on one line and the
// message gets most of the width, not a column of a few letters, and
// nothing is wider than the screen; the cause code is left out.
func TestStatusPageAtPhoneWidth(t *testing.T) {
	st := NewStore(StoreOptions{})
	h := NewHandler(st, HandlerOptions{Local: true})
	in := sample(alice, "taro.yamada@example.com")
	in.Message = "The server refused the user name or password. Retype the password, use your full email address as user name, and an app password if 2-step is on."
	st.Add(in)
	_, body := get(t, h, "/?lang=en", "127.0.0.1:5555", nil)
	if !strings.Contains(body, "taro.yamada@example.com") {
		t.Fatalf("status page lacks the failure:\n%s", body)
	}
	got := testkit.MeasureAtPhoneWidth(t, []byte(body), measureRow)
	m := regexp.MustCompile(`^user-lines=(\d+) message-width=(\d+) page-width=(\d+) viewport=(\d+) cause-shown=(\w+)$`).FindStringSubmatch(got)
	if m == nil {
		t.Fatalf("measurement %q", got)
	}
	lines, _ := strconv.Atoi(m[1])
	width, _ := strconv.Atoi(m[2])
	pageWidth, _ := strconv.Atoi(m[3])
	if m[4] != "390" {
		t.Fatalf("the frame is %s px wide, not 390", m[4])
	}
	if m[5] != "false" {
		t.Error("the cause code is shown at phone width (it is for wider screens)")
	}
	if pageWidth > 390 {
		t.Errorf("the page is %d px wide: the phone scrolls sideways", pageWidth)
	}
	if lines != 1 {
		t.Errorf("the user name is drawn on %d lines at phone width, want 1", lines)
	}
	t.Logf("user name on %d line(s), message %d px wide", lines, width)
	if width < 300 {
		t.Errorf("the message is %d px wide at phone width, want at least 300 of 390", width)
	}
}
