package bridge

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/imapwhy/imapwhy/internal/config"
	"github.com/imapwhy/imapwhy/internal/shield"
)

var testParams = shield.Params{Time: 1, Memory: 1024, Threads: 1}

// A sealed grant opens with its password only, and the file holds neither
// the token nor the password.
func TestFileStoreSealed(t *testing.T) {
	dir := t.TempDir() + "/oauth-bridge"
	s, err := NewFileStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	const token, password = "rt-0123456789abcdef-refresh", "correct horse battery"
	rec, err := newRecord("Alice@Example.test", "op", password, testParams, grant{RefreshToken: token})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Save(rec); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(s.Path("alice@example.test"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("file: %v %v", fi, err)
	}
	if di, _ := os.Stat(dir); di.Mode().Perm() != 0o700 {
		t.Errorf("directory mode %v", di.Mode().Perm())
	}
	data, _ := os.ReadFile(s.Path("alice@example.test"))
	if strings.Contains(string(data), token) || strings.Contains(string(data), password) || strings.Contains(string(data), "refresh") {
		t.Errorf("file holds a secret in clear:\n%s", data)
	}
	got, err := s.Load("ALICE@example.test")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := got.open("correct horse battery "); !errors.Is(err, ErrWrongPassword) {
		t.Errorf("wrong password: %v", err)
	}
	g, k, err := got.open(password)
	if err != nil || g.RefreshToken != token || len(k) != 32 {
		t.Fatalf("open: %v", err)
	}
	// Bound to the user: the same sealed bytes under another name do not open.
	other := *got
	other.User = "bob@example.test"
	if _, _, err := other.open(password); !errors.Is(err, ErrWrongPassword) {
		t.Errorf("record moved to another user opened: %v", err)
	}
	if err := s.Delete("alice@example.test"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Load("alice@example.test"); !errors.Is(err, ErrNotConnected) {
		t.Errorf("after Delete: %v", err)
	}
}

func TestNewPassword(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		p := NewPassword()
		if !regexp.MustCompile(`^[a-z2-9]{4}(-[a-z2-9]{4}){5}$`).MatchString(p) || strings.ContainsAny(p, "01l") || seen[p] {
			t.Fatalf("password %q", p)
		}
		if CheckOwnPassword(p) != "" {
			t.Errorf("generated password refused: %s", CheckOwnPassword(p))
		}
		seen[p] = true
	}
	for _, bad := range []string{"short", " leading space here", strings.Repeat("x", 300)} {
		if CheckOwnPassword(bad) == "" {
			t.Errorf("%q accepted", bad)
		}
	}
}

// The token endpoint's refusals keep their OAuth error, never the body.
func TestGrantError(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
		down bool
	}{
		{&oauth2.RetrieveError{Response: &http.Response{StatusCode: 400}, ErrorCode: "invalid_grant", ErrorDescription: "AADSTS70008: expired"}, "invalid_grant", false},
		{&oauth2.RetrieveError{Response: &http.Response{StatusCode: 400}, Body: []byte(`{"error":"consent_required"}`)}, "consent_required", false},
		{&oauth2.RetrieveError{Response: &http.Response{StatusCode: 503}, Body: []byte(`<html>down</html>`)}, "", true},
		{errors.New("dial tcp: connection refused"), "", true},
	} {
		var ge *GrantError
		if !errors.As(grantError(tc.err), &ge) || ge.Failure.Error != tc.want || ge.Failure.Unreachable != tc.down {
			t.Errorf("%v: %+v", tc.err, ge)
		}
	}
}

// Without web.public_url there is no exact redirect URI: the browser flow
// says so instead of sending the provider a relative one.
func TestConnectNeedsPublicURL(t *testing.T) {
	s, err := NewFileStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(config.OAuthBridge{Providers: []config.BridgeProvider{{Kind: "google", Name: "google", ClientID: "x", Domains: []string{"example.test"}}}}, Options{Store: s})
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, ConnectPath, strings.NewReader("user=a%40example.test"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	b.Handler().ServeHTTP(w, req)
	if w.Code != http.StatusServiceUnavailable || !strings.Contains(w.Body.String(), "web.public_url") {
		t.Errorf("HTTP %d\n%s", w.Code, w.Body.String())
	}
}

// The connect page speaks the viewer's language, as the incident pages do.
func TestConnectPageLanguage(t *testing.T) {
	s, err := NewFileStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(config.OAuthBridge{Providers: []config.BridgeProvider{{Kind: "google", Name: "google", ClientID: "x", Domains: []string{"example.test"}}}}, Options{Store: s, PublicURL: "https://gw.example.test"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ url, accept, want string }{
		{ConnectPath + "?user=a%40example.test&lang=ja", "", "メールアカウントを接続"},
		{ConnectPath, "ja-JP,ja;q=0.9", `lang="ja"`},
		{ConnectPath, "en-US", "Connect your mail account"},
	} {
		w := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, tc.url, nil)
		req.Header.Set("Accept-Language", tc.accept)
		b.Handler().ServeHTTP(w, req)
		if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), tc.want) {
			t.Errorf("%s (%s): HTTP %d, no %q", tc.url, tc.accept, w.Code, tc.want)
		}
	}
}
