package proxy

// What must hold after every test of the package, and that no single test
// can check on its own:
//
//   - no goroutine outlives the tests (goleak, after the last test);
//   - no password a test typed reached anything the proxy wrote or showed:
//     its log at debug level, the replies its clients received, the error
//     texts the tests saw. Every proxy started by a test logs into
//     exposure (testLogger, NewTestLogger), tests add what else they see
//     (expose), passwords are registered as they are made (testSecret,
//     RegisterTestSecrets), and TestMain searches the lot at the end.

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/imapwhy/imapwhy/internal/testkit"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		code = afterAllTests()
	}
	os.Exit(code)
}

// afterAllTests runs the checks of the whole test binary and returns the
// exit code.
func afterAllTests() int {
	code := 0
	if found := exposure.search(secrets.list()); len(found) > 0 {
		fmt.Fprintf(os.Stderr, "secrets: %d test password(s) found in what the proxy wrote or showed:\n%s\n",
			len(found), strings.Join(found, "\n"))
		code = 1
	} else {
		fmt.Fprintf(os.Stderr, "secrets: %d passwords searched for in %d bytes of logs, replies and errors: none found\n",
			len(secrets.list()), exposure.Len())
	}
	tally.print()
	if err := goleak.Find(); err != nil {
		fmt.Fprintf(os.Stderr, "goleak: goroutines left after the tests: %v\n", err)
		code = 1
	}
	return code
}

// tally adds up the robustness tests' figures (sessions held, faults
// survived, bad inputs tried, bytes lost), printed after the tests.
var tally = &figures{counts: map[string]int64{}}

type figures struct {
	mu     sync.Mutex
	counts map[string]int64
}

func (f *figures) add(name string, n int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.counts[name] += n
}

func (f *figures) print() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.counts) == 0 {
		return
	}
	names := make([]string, 0, len(f.counts))
	for name := range f.counts {
		names = append(names, name)
	}
	slices.Sort(names)
	parts := make([]string, len(names))
	for i, name := range names {
		parts[i] = fmt.Sprintf("%s %d", name, f.counts[name])
	}
	fmt.Fprintf(os.Stderr, "robustness: %s\n", strings.Join(parts, ", "))
}

// exposure collects every byte the proxy wrote or showed during the tests.
var exposure = &exposureSink{}

// exposureSink is a concurrency-safe, append-only buffer.
type exposureSink struct{ testkit.Buffer }

// search returns one line per secret found, naming where it appears, in
// every form a leak could take: as typed, as an IMAP quoted string, and
// inside an AUTHENTICATE PLAIN message.
func (s *exposureSink) search(list []string) []string {
	data := s.Bytes()
	var found []string
	for _, secret := range list {
		for _, form := range secretForms(secret) {
			if i := bytes.Index(data, []byte(form)); i >= 0 {
				found = append(found, fmt.Sprintf("  %q (as %q) in: %q", secret, form, around(data, i, len(form))))
				break
			}
		}
	}
	return found
}

// secretForms are the ways a password could show up in a text.
func secretForms(secret string) []string {
	quoted := strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(secret)
	forms := []string{secret, quoted}
	// A PLAIN message ends with the password. base64 works on groups of 3
	// bytes, so its encoding ends with the encoding of the password less
	// the 0, 1 or 2 bytes that share a group with what comes before.
	for skip := 0; skip < 3 && skip < len(secret); skip++ {
		forms = append(forms, base64.StdEncoding.EncodeToString([]byte(secret[skip:])))
	}
	return slices.DeleteFunc(forms, func(f string) bool { return len(f) < minSecretLen })
}

// around is the line of data around [i, i+n), for the report.
func around(data []byte, i, n int) string {
	start := max(0, bytes.LastIndexByte(data[:i], '\n')+1, i-200)
	end := min(len(data), i+n+200)
	if j := bytes.IndexByte(data[i:end], '\n'); j >= 0 {
		end = i + j
	}
	return string(data[start:end])
}

// expose adds text the tests saw (a reply, an error) to what is searched.
func expose(text string) {
	exposure.Write([]byte(text + "\n"))
}

// minSecretLen: shorter passwords, and base64 fragments shorter than this,
// would match ordinary text by chance.
const minSecretLen = 7

// secrets registers the passwords the tests use.
var secrets = &secretRegistry{known: map[string]bool{}}

func init() {
	// Passwords typed by the package's other tests (new tests: use
	// testSecret, or RegisterTestSecrets from package proxy_test).
	secrets.add("alicepass", "Wr0ngPassw0rd", "Wr0ng-S3cret!", "n3w-Secret", "adminpass",
		"pässwörd", "pässword", "abcd efgh ijkl mnop")
}

// secretRegistry is the set of passwords to search for.
type secretRegistry struct {
	mu    sync.Mutex
	known map[string]bool
}

func (r *secretRegistry) add(list ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range list {
		if len(s) < minSecretLen {
			panic(fmt.Sprintf("test secret %q is too short to be searched for reliably", s))
		}
		r.known[s] = true
	}
}

func (r *secretRegistry) list() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, 0, len(r.known))
	for s := range r.known {
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

// testSecret registers and returns a password for a test: distinctive, so
// that finding it anywhere is a leak and not a coincidence.
func testSecret(name string) string {
	s := "pw-" + name + "-Q7x9Kz"
	secrets.add(s)
	return s
}

// testLogger is the proxy logger for the package's tests: debug level, into
// w (for the test's own assertions) and into exposure.
func testLogger(w io.Writer) zerolog.Logger {
	return zerolog.New(io.MultiWriter(w, exposure)).Level(zerolog.DebugLevel)
}

// NewTestLogger is testLogger for the external test package proxy_test
// (this file is compiled into the test binary only).
func NewTestLogger(w io.Writer) zerolog.Logger { return testLogger(w) }

// RegisterTestSecrets is secrets.add for the external test package.
func RegisterTestSecrets(list ...string) { secrets.add(list...) }

// ExposeForTest is expose for the external test package.
func ExposeForTest(text string) { expose(text) }

// TestSecretSearch checks the search itself: every form of a leak is found,
// and text without the secret is not flagged.
func TestSecretSearch(t *testing.T) {
	const secret = "s3cret-Passw0rd"
	leaks := map[string]string{
		"as typed": `{"level":"debug","line":"a LOGIN alice s3cret-Passw0rd"}`,
		"quoted":   `a LOGIN "alice" "s3cret-Passw0rd"`,
	}
	for _, user := range []string{"", "a", "al", "alice", "carol@example.test"} {
		leaks["PLAIN for "+user] = "a AUTHENTICATE PLAIN " + testkit.Plain(user, secret)
		leaks["PLAIN with authzid for "+user] = base64.StdEncoding.EncodeToString([]byte("admin\x00" + user + "\x00" + secret))
	}
	for name, text := range leaks {
		s := &exposureSink{}
		s.Write([]byte("before\n" + text + "\nafter\n"))
		if found := s.search([]string{secret}); len(found) != 1 {
			t.Errorf("%s: %q not found in %q", name, secret, text)
		}
	}
	clean := &exposureSink{}
	clean.Write([]byte(`a LOGIN alice "other-Passw0rd"` + "\n" + testkit.Plain("alice", "other")))
	if found := clean.search([]string{secret}); len(found) != 0 {
		t.Errorf("false alarm: %v", found)
	}
}

// TestRedactPassword: every form the proxy sent the password in is masked
// in a server's text; a password too short to tell from ordinary words is
// left alone.
func TestRedactPassword(t *testing.T) {
	req := &loginRequest{Username: "alice", Password: `s3"cr\et`}
	plain := testkit.Plain("alice", req.Password)
	for _, tc := range []struct{ in, want string }{
		{`LOGIN "alice" "s3\"cr\\et" failed`, `LOGIN "alice" "***" failed`},
		{`wrong password s3"cr\et`, `wrong password ***`},
		{"AUTHENTICATE PLAIN " + plain + " rejected", "AUTHENTICATE PLAIN *** rejected"},
		{"Authentication failed.", "Authentication failed."},
	} {
		if got := redactPassword(tc.in, req); got != tc.want {
			t.Errorf("redactPassword(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	short := &loginRequest{Username: "alice", Password: "in"}
	if got := redactPassword("Login failed", short); got != "Login failed" {
		t.Errorf("a two-letter password masked in %q", got)
	}
}
