package testkit

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// IPhoneUA is the browser an iPhone's camera opens a QR code in.
const IPhoneUA = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"

// Chromium runs headless Chromium with a window size ("390,844" is an
// iPhone's), an iPhone's user agent, one more flag (--dump-dom,
// --screenshot=FILE) and the URL, and returns its standard output.
// Certificates are not checked: the caller has verified them already.
// A screenshot has the size asked for, but the page is laid out in a window
// at least 500 px wide (headless Chromium's minimum): a --dump-dom check
// "at phone width" needs the page in a 390 px iframe: MeasureAtPhoneWidth.
func Chromium(t testing.TB, size, flag, url string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "chromium", "--headless", "--no-sandbox", "--disable-gpu",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
		"--ignore-certificate-errors", "--user-data-dir="+t.TempDir(), "--window-size="+size, "--user-agent="+IPhoneUA, flag, url)
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %s %s: %v", flag, url, err)
	}
	return stdout.String()
}

// MeasureAtPhoneWidth lays page out as an iPhone does (a 390 x 844 frame in
// headless Chromium) and returns what measure, the body of a JavaScript
// function of w (the frame's window) and d (its document), returns as a
// string. The page is served as given, from a plain loopback server
// without its own headers, so that the measuring frame may read it.
func MeasureAtPhoneWidth(t testing.TB, page []byte, measure string) string {
	t.Helper()
	frame := `<!doctype html><body style="margin:0">
<iframe id="phone" src="/page" style="width:390px;height:844px;border:0"></iframe>
<script>
document.getElementById("phone").onload = function () {
  var result = (function (w, d) {` + measure + `})(this.contentWindow, this.contentWindow.document);
  var out = document.createElement("pre");
  out.id = "measured";
  out.textContent = "\u2063" + result + "\u2063";
  document.body.appendChild(out);
};
</script></body>`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if r.URL.Path == "/page" {
			w.Write(page)
			return
		}
		w.Write([]byte(frame))
	}))
	defer srv.Close()
	dom := Chromium(t, "390,844", "--dump-dom", srv.URL+"/")
	// The result is between two invisible separators (U+2063), which the
	// script's own text holds only as an escape.
	_, rest, ok := strings.Cut(dom, "\u2063")
	result, _, ok2 := strings.Cut(rest, "\u2063")
	if !ok || !ok2 {
		t.Fatalf("no measurement in the rendered page:\n%s", dom)
	}
	return result
}
