package incident

import (
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestLinkify(t *testing.T) {
	for in, want := range map[string]string{
		"Make one at https://myaccount.google.com/apppasswords.": `Make one at <a href="https://myaccount.google.com/apppasswords" rel="noreferrer noopener">https://myaccount.google.com/apppasswords</a>.`,
		"詳しくは https://example.jp/help?a=1&b=2 を見てください。":          `詳しくは <a href="https://example.jp/help?a=1&amp;b=2" rel="noreferrer noopener">https://example.jp/help?a=1&amp;b=2</a> を見てください。`,
		"no <b>link</b> here":            "no &lt;b&gt;link&lt;/b&gt; here",
		"javascript:alert(1) is not one": "javascript:alert(1) is not one",
		"(see https://x.example/a)":      `(see <a href="https://x.example/a" rel="noreferrer noopener">https://x.example/a</a>)`,
	} {
		if got := string(Linkify(in)); got != want {
			t.Errorf("Linkify(%q) =\n%s\nwant\n%s", in, got, want)
		}
	}
}

// TestStatusPageListenerLanguage: the status page speaks the language its
// failures were answered in; times carry UTC for the viewer's time zone;
// a device that refused the certificate is listed until it logs in.
func TestStatusPageListenerLanguage(t *testing.T) {
	clk := newFakeClock()
	st := NewStore(StoreOptions{TTL: time.Hour, Now: clk.Now})
	h := NewHandler(st, HandlerOptions{Local: true, Location: time.UTC})
	in := sample(alice, "taro@example.jp")
	in.Lang, in.Message = "ja", "アプリパスワードが必要です。https://support.google.com/accounts/answer/185833 を見てください。"
	st.Add(in)
	phone := netip.MustParseAddr("192.168.1.23")
	st.MarkUntrusted(phone)
	_, body := get(t, h, "/", "127.0.0.1:4000", func(r *http.Request) { r.Header.Set("Accept-Language", "en-US") })
	for _, want := range []string{`lang="ja"`, `<time datetime="` + clk.Now().UTC().Format(time.RFC3339) + `"`,
		`<a href="https://support.google.com/accounts/answer/185833" rel="noreferrer noopener">`,
		"192.168.1.23 の端末はまだ imapwhy を信頼していません"} {
		if !strings.Contains(body, want) {
			t.Errorf("status page lacks %q:\n%s", want, body)
		}
	}
	_, body = get(t, h, "/?lang=en", "127.0.0.1:4000", nil)
	if !strings.Contains(body, "The device at 192.168.1.23 does not trust imapwhy yet: open /setup on it.") {
		t.Errorf("English status page lacks the untrusted device")
	}
	st.Trusted(phone)
	if _, body = get(t, h, "/?lang=en", "127.0.0.1:4000", nil); strings.Contains(body, "192.168.1.23") {
		t.Error("a device that logged in is still listed as not trusting imapwhy")
	}
}
