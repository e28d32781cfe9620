package incident

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/imapwhy/imapwhy/internal/testkit"
)

// phoneFrame shows /page in a frame as wide as an iPhone's screen (headless
// Chromium's window is never narrower than 500 px) and reports, for the
// first failure listed, on how many lines the user name is drawn, how wide
// the message is, and how wide the page is.
const phoneFrame = `<!doctype html><body style="margin:0">
<iframe id="phone" src="/page" style="width:390px;height:844px;border:0"></iframe>
<script>
document.getElementById("phone").onload = function () {
  var w = this.contentWindow, d = w.document;
  var cells = d.querySelector("table tbody tr").querySelectorAll("td");
  var r = d.createRange();
  r.selectNodeContents(cells[1]);
  var out = document.createElement("pre");
  out.textContent = "user-lines=" + r.getClientRects().length +
    " message-width=" + Math.round(cells[2].getBoundingClientRect().width) +
    " page-width=" + d.documentElement.scrollWidth + " viewport=" + w.innerWidth + " cause-shown=" + (cells[3].getClientRects().length > 0);
  document.body.appendChild(out);
};
</script></body>`

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
	// The page is served again, as it was rendered, from a plain loopback
	// server, next to the frame that measures it.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if r.URL.Path == "/page" {
			w.Write([]byte(body))
			return
		}
		w.Write([]byte(phoneFrame))
	}))
	defer srv.Close()
	dom := testkit.Chromium(t, "390,844", "--dump-dom", srv.URL+"/")
	m := regexp.MustCompile(`user-lines=(\d+) message-width=(\d+) page-width=(\d+) viewport=(\d+) cause-shown=(\w+)`).FindStringSubmatch(dom)
	if m == nil {
		t.Fatalf("no measurement in the rendered page:\n%s", dom)
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
	t.Logf("user name on %d line(s), message %d px wide, viewport %s", lines, width, m[4])
	if width < 300 {
		t.Errorf("the message is %d px wide at phone width, want at least 300 of 390", width)
	}
}
