package incident

import (
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/imapwhy/imapwhy/diagnose"
	"github.com/imapwhy/imapwhy/internal/testkit"
)

// newFakeClock is a settable clock.
func newFakeClock() *testkit.Clock {
	return testkit.NewClock(time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC))
}

var (
	alice = netip.MustParseAddr("127.0.0.1")
	bob   = netip.MustParseAddr("192.168.1.20")
)

func sample(client netip.Addr, user string) Incident {
	return Incident{
		Client: client, User: user, Lang: "en",
		Message:      "Gmail needs an app password here, not your normal password.",
		Cause:        diagnose.CauseProviderAppPasswordRequired,
		Code:         "AUTHENTICATIONFAILED",
		Provider:     "gmail",
		ProviderName: "Gmail",
		HelpURL:      "https://support.google.com/accounts/answer/185833",
	}
}

func TestIDs(t *testing.T) {
	st := NewStore(StoreOptions{})
	seen := map[string]bool{}
	re := regexp.MustCompile(`^[a-z2-7]{20}$`)
	for range 1000 {
		in := st.Add(sample(alice, "a@example.com"))
		if !re.MatchString(in.ID) || seen[in.ID] {
			t.Fatalf("ID %q: not 20 base32 characters, or repeated", in.ID)
		}
		seen[in.ID] = true
	}
	if idLen != 20 || idBytes*8 < 96 {
		t.Errorf("IDs carry %d bits in %d characters", idBytes*8, idLen)
	}
	for _, bad := range []string{"", "short", strings.Repeat("a", 21), strings.Repeat("1", 20), "../../../../etc/pass"} {
		if _, ok := st.Get(bad); ok {
			t.Errorf("Get(%q) found something", bad)
		}
	}
}

func TestStoreExpiryAndBound(t *testing.T) {
	clk := newFakeClock()
	st := NewStore(StoreOptions{TTL: time.Hour, Max: 3, Now: clk.Now})
	first := st.Add(sample(alice, "a"))
	clk.Advance(30 * time.Minute)
	second := st.Add(sample(bob, "b"))
	if _, ok := st.Get(first.ID); !ok {
		t.Fatal("incident gone before its TTL")
	}
	if got, _ := st.Get(strings.ToUpper(first.ID)); got.ID != first.ID {
		t.Error("IDs are not case-insensitive")
	}
	clk.Advance(30 * time.Minute)
	if _, ok := st.Get(first.ID); ok {
		t.Error("incident still there at its TTL")
	}
	if _, ok := st.Get(second.ID); !ok {
		t.Error("the younger incident expired with the older one")
	}
	for range 5 {
		st.Add(sample(alice, "c"))
	}
	if n := st.Len(); n != 3 {
		t.Errorf("%d incidents kept, want the bound 3", n)
	}
	if _, ok := st.Get(second.ID); ok {
		t.Error("the oldest incident was not dropped at the bound")
	}
	mine := st.Recent(func(in *Incident) bool { return in.Client == alice }, 2)
	if len(mine) != 2 || mine[0].Time.Before(mine[1].Time) {
		t.Errorf("Recent: %v", mine)
	}
	h := st.Hourly()
	if len(h) != chartHours || h[len(h)-1].Count != 5 || h[len(h)-2].Count != 2 {
		t.Errorf("hourly counts %v, want 2 then 5 in the last two hours", h)
	}
}

func TestStepsComplete(t *testing.T) {
	for _, lang := range languages {
		for _, c := range diagnose.Causes() {
			if s := Steps(c, lang); len(s) == 0 {
				t.Errorf("%s %s: no steps", lang, c)
			}
		}
	}
	if Steps("no.such_cause", "fr")[0] != Steps(diagnose.CauseCredentialsRejected, "en")[0] {
		t.Error("unknown cause and language do not fall back to the English checklist")
	}
	if _, err := loadSteps([]byte("password.empty: [x]\n")); err == nil {
		t.Error("an incomplete catalog loaded")
	}
	if _, err := loadSteps([]byte("nope: [x]\n")); err == nil {
		t.Error("an unknown cause loaded")
	}
}

func get(t *testing.T, h http.Handler, path, remote string, set func(*http.Request)) (*http.Response, string) {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, path, nil)
	r.RemoteAddr = remote
	if set != nil {
		set(r)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	resp := w.Result()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestIncidentPage(t *testing.T) {
	clk := newFakeClock()
	st := NewStore(StoreOptions{TTL: time.Hour, Now: clk.Now})
	h := NewHandler(st, HandlerOptions{Local: true, Location: time.UTC})
	in := st.Add(sample(alice, "secret-user@example.com"))
	resp, body := get(t, h, Path(in.ID), "203.0.113.9:4000", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	for _, want := range []string{html.EscapeString(in.Message), html.EscapeString(Steps(in.Cause, "en")[0]), `href="https://support.google.com/accounts/answer/185833" rel="noreferrer noopener"`, "Help page of Gmail", "11:00 UTC", "provider.app_password_required", `lang="en"`, `name="viewport"`} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	// The one script is the time-zone one the policy lets through.
	if strings.Count(body, "<script") != 1 || !strings.Contains(body, "<script>"+timeJS+"</script>") ||
		!strings.Contains(resp.Header.Get("Content-Security-Policy"), "script-src "+timeHash+";") {
		t.Error("a script other than the time-zone one, or not under the policy")
	}
	if !strings.Contains(body, `<time data-form="time" datetime="`) {
		t.Error("the expiry time is not marked for the viewer's time zone")
	}
	for _, never := range []string{"secret-user", "127.0.0.1", "http://"} {
		if strings.Contains(body, never) {
			t.Errorf("page shows %q", never)
		}
	}
	for k, want := range map[string]string{
		"Referrer-Policy": "no-referrer", "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
		"Content-Type": "text/html; charset=utf-8",
	} {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, cssHash) {
		t.Errorf("CSP %q", csp)
	}
	ja := sample(alice, "x")
	ja.Lang, ja.Message = "ja", "Gmailではアプリパスワードが必要です。"
	jin := st.Add(ja)
	if _, body := get(t, h, Path(jin.ID), "127.0.0.1:1", nil); !strings.Contains(body, "対処方法") || !strings.Contains(body, ja.Message) {
		t.Error("the Japanese incident's page is not in Japanese")
	}
	// ?lang= chooses the page's own words and steps, as on the status
	// page; the message stays as the mail app showed it.
	for _, c := range []struct {
		id, lang string
		want     []string
		not      string
	}{
		{jin.ID, "en", []string{html.EscapeString(Steps(ja.Cause, "en")[0]), `lang="en"`, ja.Message, `lang="ja">`}, "対処方法"},
		{in.ID, "ja", []string{"対処方法", html.EscapeString(Steps(in.Cause, "ja")[0]), `<html lang="ja"`, html.EscapeString(in.Message)}, html.EscapeString(Steps(in.Cause, "en")[0])},
	} {
		_, body := get(t, h, Path(c.id)+"?lang="+c.lang, "127.0.0.1:1", nil)
		for _, w := range c.want {
			if !strings.Contains(body, w) {
				t.Errorf("?lang=%s: page lacks %q", c.lang, w)
			}
		}
		if strings.Contains(body, c.not) {
			t.Errorf("?lang=%s: page has %q", c.lang, c.not)
		}
	}
	clk.Advance(time.Hour)
	resp, body = get(t, h, Path(in.ID), "127.0.0.1:1", nil)
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(body, "expired") || strings.Contains(body, in.Message) {
		t.Errorf("after the TTL: %d %q", resp.StatusCode, body)
	}
	r := httptest.NewRequest(http.MethodPost, Path(in.ID), nil)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d", w.Code)
	}
}

func TestLocalStatusShowsOnlyTheViewersFailures(t *testing.T) {
	st := NewStore(StoreOptions{})
	h := NewHandler(st, HandlerOptions{Local: true})
	st.Add(sample(alice, "alice@example.com"))
	st.Add(sample(bob, "bob@example.com"))
	_, body := get(t, h, "/", "127.0.0.1:5555", nil)
	if !strings.Contains(body, "alice@example.com") || strings.Contains(body, "bob@example.com") {
		t.Errorf("alice's view:\n%s", body)
	}
	_, body = get(t, h, "/", "[::ffff:192.168.1.20]:5555", nil)
	if strings.Contains(body, "alice@example.com") || !strings.Contains(body, "bob@example.com") {
		t.Errorf("bob's view (IPv4-mapped):\n%s", body)
	}
	_, body = get(t, h, "/", "127.0.0.2:5555", func(r *http.Request) { r.Header.Set("Accept-Language", "ja,en;q=0.8") })
	if strings.Contains(body, "@example.com") || !strings.Contains(body, "最近のログイン失敗はありません") {
		t.Errorf("another address's view:\n%s", body)
	}
}

func TestGatewayStatusNeedsAdmin(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("admin-pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	clk := newFakeClock()
	st := NewStore(StoreOptions{Now: clk.Now})
	h := NewHandler(st, HandlerOptions{Admin: &Admin{User: "admin", Hash: hash}})
	st.Add(sample(alice, "alice@example.com"))
	st.Add(sample(bob, "bob@example.com"))
	resp, body := get(t, h, "/", "198.51.100.1:1", nil)
	if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic ") || strings.Contains(body, "@example.com") {
		t.Fatalf("without credentials: %d %q", resp.StatusCode, body)
	}
	resp, body = get(t, h, "/", "198.51.100.1:1", func(r *http.Request) { r.SetBasicAuth("admin", "admin-pw") })
	if resp.StatusCode != 200 {
		t.Fatalf("with credentials: %d", resp.StatusCode)
	}
	for _, want := range []string{"alice@example.com", "bob@example.com", "<svg", "By cause", "provider.app_password_required", "Gmail"} {
		if !strings.Contains(body, want) {
			t.Errorf("admin page lacks %q", want)
		}
	}
	// Guessing is bounded per address: after authFailures wrong tries,
	// even the right password waits.
	for range authFailures {
		if resp, _ := get(t, h, "/", "198.51.100.7:1", func(r *http.Request) { r.SetBasicAuth("admin", "guess") }); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("wrong password: %d", resp.StatusCode)
		}
	}
	right := func(r *http.Request) { r.SetBasicAuth("admin", "admin-pw") }
	if resp, _ := get(t, h, "/", "198.51.100.7:1", right); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("after %d wrong passwords: %d, want 429", authFailures, resp.StatusCode)
	}
	if resp, _ := get(t, h, "/", "198.51.100.1:1", right); resp.StatusCode != 200 {
		t.Errorf("another address is limited too: %d", resp.StatusCode)
	}
	clk.Advance(authRefill)
	if resp, _ := get(t, h, "/", "198.51.100.7:1", right); resp.StatusCode != 200 {
		t.Errorf("after waiting: %d", resp.StatusCode)
	}
	noAdmin := NewHandler(st, HandlerOptions{})
	if resp, _ := get(t, noAdmin, "/", "127.0.0.1:1", nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("gateway without admin credentials: %d", resp.StatusCode)
	}
}

func TestChart(t *testing.T) {
	hours := make([]HourBucket, chartHours)
	for i := range hours {
		hours[i] = HourBucket{Start: time.Unix(int64(i)*3600, 0), Count: i % 3}
	}
	hours[5].Count = 100
	c := newChart(hours, time.UTC)
	if c.Max != 100 || len(c.Bars) != chartHours {
		t.Fatalf("chart %+v", c)
	}
	for i, b := range c.Bars {
		if b.Y+b.H != chartBase || b.H < 0 || (hours[i].Count > 0 && b.H == 0) {
			t.Errorf("bar %d: %+v", i, b)
		}
	}
	if c.Bars[5].H != chartBase-chartTop {
		t.Errorf("the largest bar is %d high, want %d", c.Bars[5].H, chartBase-chartTop)
	}
}

func TestShortDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{time.Hour: "1h", 90 * time.Minute: "1h30m", 30 * time.Minute: "30m", 45 * time.Second: "45s", 24 * time.Hour: "24h"} {
		if got := shortDuration(d); got != want {
			t.Errorf("shortDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

// TestAdminLimitByNetwork: the admin login limit counts an IPv6 client by
// its /64, as the IMAP limits do, so hopping addresses in one's own /64
// gains no guesses; and all addresses together are capped, so that many
// networks cannot guess faster.
func TestAdminLimitByNetwork(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("admin-pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	clk := newFakeClock()
	h := NewHandler(NewStore(StoreOptions{Now: clk.Now}), HandlerOptions{Admin: &Admin{User: "admin", Hash: hash}})
	guess := func(r *http.Request) { r.SetBasicAuth("admin", "guess") }
	right := func(r *http.Request) { r.SetBasicAuth("admin", "admin-pw") }
	for i := range authFailures {
		if resp, _ := get(t, h, "/", fmt.Sprintf("[2001:db8:1:2::%x]:1", i+1), guess); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("guess %d: %d", i, resp.StatusCode)
		}
	}
	if resp, _ := get(t, h, "/", "[2001:db8:1:2:ffff::1]:1", guess); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("another address of the same /64 after %d wrong passwords: %d, want 429", authFailures, resp.StatusCode)
	}
	if resp, _ := get(t, h, "/", "[2001:db8:1:3::1]:1", right); resp.StatusCode != http.StatusOK {
		t.Errorf("another /64: %d", resp.StatusCode)
	}

	// Many networks, each within its own limit: the global cap.
	refused := 0
	for i := range authGlobalFailures {
		resp, _ := get(t, h, "/", fmt.Sprintf("198.51.%d.%d:1", i/200, i%200+1), guess)
		if resp.StatusCode == http.StatusTooManyRequests {
			refused++
		}
	}
	if resp, _ := get(t, h, "/", "203.0.113.50:1", guess); resp.StatusCode != http.StatusTooManyRequests || refused == 0 {
		t.Errorf("past %d failures from many addresses: %d (%d refused before)", authGlobalFailures, resp.StatusCode, refused)
	}
	clk.Advance(authRefill)
	if resp, _ := get(t, h, "/", "203.0.113.50:1", right); resp.StatusCode != http.StatusOK {
		t.Errorf("after a pause: %d", resp.StatusCode)
	}
}
