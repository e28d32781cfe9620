package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/imapwhy/imapwhy/internal/config"
	"github.com/imapwhy/imapwhy/internal/testkit"
)

// frontTestWait bounds every wait of these tests; no assertion depends on it.
const frontTestWait = 10 * time.Second

const (
	frontGreetPlain  = "* OK [CAPABILITY IMAP4rev1 SASL-IR LITERAL+ ID LANGUAGE STARTTLS LOGINDISABLED] imapwhy ready."
	frontGreetSecure = "* OK [CAPABILITY IMAP4rev1 SASL-IR LITERAL+ ID LANGUAGE AUTH=PLAIN] imapwhy ready."
	frontCapsPlain   = "* CAPABILITY IMAP4rev1 SASL-IR LITERAL+ ID LANGUAGE STARTTLS LOGINDISABLED"
	frontCapsSecure  = "* CAPABILITY IMAP4rev1 SASL-IR LITERAL+ ID LANGUAGE AUTH=PLAIN"
)

// frontStep is one exchange of a transcript test, done in this order: the
// client sends send; if login is set, next must return that login, which
// reply answers (nil: fail with AUTHENTICATIONFAILED "Wrong password");
// then the server's lines must be exactly want (CRLF left off); then, if
// set, the client starts TLS, next ends with an error matching end, and the
// server closes the connection.
type frontStep struct {
	send  string
	login *loginRequest
	reply func(*front, *loginRequest) error
	want  []string
	tls   bool
	end   error
	eof   bool
}

func frontReplyFail(f *front, req *loginRequest) error {
	return f.refuse(reply{tag: req.Tag, code: "AUTHENTICATIONFAILED", text: "Wrong password"})
}

func frontFailLines(tag string) []string {
	return []string{"* OK [ALERT] Wrong password", tag + " NO [AUTHENTICATIONFAILED] Wrong password"}
}

func frontPrivacyLines(tag, lang string) []string {
	text := frontTexts[lang][frontMsgPrivacy]
	return []string{"* OK [ALERT] " + text, tag + " NO [PRIVACYREQUIRED] " + text}
}

func frontB64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func TestPreauthTranscripts(t *testing.T) {
	serverTLS, clientTLS := frontTestTLS(t)
	plain := frontConfig{TLSConfig: serverTLS}
	secure := frontConfig{Secure: true}
	tests := []struct {
		name  string
		cfg   frontConfig
		steps []frontStep
	}{
		{"greeting capability noop logout", secure, []frontStep{
			{want: []string{frontGreetSecure}},
			{send: "a1 CAPABILITY\r\n", want: []string{frontCapsSecure, "a1 OK CAPABILITY completed"}},
			{send: "a2 noop\r\n", want: []string{"a2 OK NOOP completed"}},
			{send: "a3 Logout\r\n", want: []string{"* BYE Logging out", "a3 OK LOGOUT completed"}, end: errLogout, eof: true},
		}},
		{"plain listener before STARTTLS", plain, []frontStep{
			{want: []string{frontGreetPlain}},
			{send: "a1 CAPABILITY\r\n", want: []string{frontCapsPlain, "a1 OK CAPABILITY completed"}},
		}},
		{"plain without STARTTLS", frontConfig{}, []frontStep{
			{want: []string{"* OK [CAPABILITY IMAP4rev1 SASL-IR LITERAL+ ID LANGUAGE LOGINDISABLED] imapwhy ready."}},
			{send: "a1 STARTTLS\r\n", want: []string{"a1 BAD STARTTLS is not available here"}},
		}},
		{"STARTTLS then capabilities and login", plain, []frontStep{
			{want: []string{frontGreetPlain}},
			{send: "a1 STARTTLS\r\n", want: []string{"a1 OK Begin TLS negotiation now."}, tls: true},
			{send: "a2 CAPABILITY\r\n", want: []string{frontCapsSecure, "a2 OK CAPABILITY completed"}},
			{send: "a3 STARTTLS\r\n", want: []string{"a3 BAD TLS is already active"}},
			{send: "a4 LOGIN alice secret\r\n", login: &loginRequest{Tag: "a4", Mechanism: "LOGIN", Username: "alice", Password: "secret"},
				reply: func(f *front, req *loginRequest) error {
					if _, ok := f.conn().(*tls.Conn); !ok {
						return fmt.Errorf("conn() is a %T after STARTTLS, want *tls.Conn", f.conn())
					}
					return frontReplyFail(f, req)
				},
				want: frontFailLines("a4")},
		}},
		{"STARTTLS offered on a secure listener", frontConfig{TLSConfig: serverTLS, Secure: true}, []frontStep{
			{want: []string{"* OK [CAPABILITY IMAP4rev1 SASL-IR LITERAL+ ID LANGUAGE STARTTLS AUTH=PLAIN] imapwhy ready."}},
		}},
		{"LOGIN atom, quoted, escaped, empty", secure, []frontStep{
			{want: []string{frontGreetSecure}},
			{send: "a1 LOGIN alice secret\r\n", login: &loginRequest{Tag: "a1", Mechanism: "LOGIN", Username: "alice", Password: "secret"},
				want: frontFailLines("a1")},
			{send: "a2 login \"alice smith\" \"p\\\"a\\\\ss\"\r\n", login: &loginRequest{Tag: "a2", Mechanism: "LOGIN", Username: "alice smith", Password: `p"a\ss`},
				want: frontFailLines("a2")},
			{send: "a3 LOGIN alice@example.com \"\"\r\n", login: &loginRequest{Tag: "a3", Mechanism: "LOGIN", Username: "alice@example.com", Password: ""},
				want: frontFailLines("a3")},
			{send: "a4 LOGIN  alice   secret  \r\n", login: &loginRequest{Tag: "a4", Mechanism: "LOGIN", Username: "alice", Password: "secret"},
				reply: func(f *front, req *loginRequest) error {
					return f.loggedIn(req.Tag, []string{"IMAP4rev1", "IDLE", "bad]cap", "", "MOVE"})
				},
				want: []string{"a4 OK [CAPABILITY IMAP4rev1 IDLE MOVE] Logged in"}},
			// Longer than the bufio buffer, within MaxLine.
			{send: "a5 LOGIN alice " + strings.Repeat("x", 6000) + "\r\n", login: &loginRequest{Tag: "a5", Mechanism: "LOGIN", Username: "alice", Password: strings.Repeat("x", 6000)},
				want: frontFailLines("a5")},
			// The line buffer is wiped after the password is read, not
			// before the end of the command is checked.
			{send: "a6 LOGIN alice secret extra\r\n", want: []string{"a6 BAD [CLIENTBUG] Unexpected arguments"}},
		}},
		{"LOGIN synchronising literals", secure, []frontStep{
			{want: []string{frontGreetSecure}},
			{send: "a1 LOGIN {5}\r\n", want: []string{"+ Ready for literal data"}},
			{send: "alice {6}\r\n", want: []string{"+ Ready for literal data"}},
			{send: "se cr\"\r\n", login: &loginRequest{Tag: "a1", Mechanism: "LOGIN", Username: "alice", Password: "se cr\""},
				want: frontFailLines("a1")},
		}},
		{"LOGIN LITERAL+ and UTF-8", secure, []frontStep{
			{want: []string{frontGreetSecure}},
			{send: "a1 LOGIN {5+}\r\nalice {11+}\r\nパスワ\"\\\r\n", login: &loginRequest{Tag: "a1", Mechanism: "LOGIN", Username: "alice", Password: "パスワ\"\\"},
				want: frontFailLines("a1")},
			{send: "a2 LOGIN \"ユーザー@example.jp\" \"ｐａｓｓ　word\"\r\n", login: &loginRequest{Tag: "a2", Mechanism: "LOGIN", Username: "ユーザー@example.jp", Password: "ｐａｓｓ　word"},
				want: frontFailLines("a2")},
			{send: "a3 LOGIN alice pässword\r\n", login: &loginRequest{Tag: "a3", Mechanism: "LOGIN", Username: "alice", Password: "pässword"},
				want: frontFailLines("a3")},
		}},
		{"AUTHENTICATE PLAIN", frontConfig{Secure: true, Limits: config.Limits{MaxLoginTries: 10}}, []frontStep{
			{want: []string{frontGreetSecure}},
			{send: "a1 AUTHENTICATE PLAIN " + frontB64("\x00alice\x00secret") + "\r\n",
				login: &loginRequest{Tag: "a1", Mechanism: "PLAIN", Username: "alice", Password: "secret"}, want: frontFailLines("a1")},
			{send: "a2 authenticate plain " + frontB64("admin\x00alice\x00pässword") + "\r\n",
				login: &loginRequest{Tag: "a2", Mechanism: "PLAIN", Username: "alice", Password: "pässword", Authzid: "admin"}, want: frontFailLines("a2")},
			{send: "a3 AUTHENTICATE PLAIN\r\n", want: []string{"+ "}},
			{send: frontB64("\x00alice\x00") + "\r\n",
				login: &loginRequest{Tag: "a3", Mechanism: "PLAIN", Username: "alice", Password: ""}, want: frontFailLines("a3")},
			{send: "a4 AUTHENTICATE PLAIN\r\n", want: []string{"+ "}},
			{send: "*\r\n", want: []string{"a4 BAD Authentication cancelled"}},
			{send: "a5 AUTHENTICATE PLAIN AGFsaWNl!!!\r\n", want: []string{"a5 BAD [CLIENTBUG] Invalid base64 data"}},
			{send: "a6 AUTHENTICATE PLAIN\r\n", want: []string{"+ "}},
			{send: "not base64\r\n", want: []string{"a6 BAD [CLIENTBUG] Invalid base64 data"}},
			{send: "a7 AUTHENTICATE PLAIN " + frontB64("alice") + "\r\n", want: []string{"a7 NO [AUTHENTICATIONFAILED] Malformed PLAIN credentials"}},
			{send: "a8 AUTHENTICATE PLAIN =\r\n", want: []string{"a8 NO [AUTHENTICATIONFAILED] Malformed PLAIN credentials"}},
			{send: "a9 AUTHENTICATE CRAM-MD5\r\n", want: []string{"a9 NO [CANNOT] Unsupported authentication mechanism"}},
		}},
		{"PRIVACYREQUIRED before TLS, then the dialog goes on", plain, []frontStep{
			{want: []string{frontGreetPlain}},
			{send: "a1 LOGIN alice secret\r\n", want: frontPrivacyLines("a1", "en")},
			{send: "a2 AUTHENTICATE PLAIN " + frontB64("\x00alice\x00secret") + "\r\n", want: frontPrivacyLines("a2", "en")},
			// No "+": neither the password nor the SASL response is invited.
			{send: "a3 AUTHENTICATE PLAIN\r\n", want: frontPrivacyLines("a3", "en")},
			{send: "a4 LOGIN alice {6}\r\n", want: frontPrivacyLines("a4", "en")},
			{send: "a5 NOOP\r\n", want: []string{"a5 OK NOOP completed"}},
			{send: "a6 LOGIN alice secret\r\n", want: append(frontPrivacyLines("a6", "en"), "* BYE "+frontTexts["en"][frontMsgTooManyLogins]),
				end: errFrontLimit, eof: true},
		}},
		// A Japanese listener answers in Japanese only a client that asked
		// with LANGUAGE: response text is 7-bit until then.
		{"PRIVACYREQUIRED on a Japanese listener", frontConfig{Language: "ja"}, []frontStep{
			{want: []string{"* OK [CAPABILITY IMAP4rev1 SASL-IR LITERAL+ ID LANGUAGE LOGINDISABLED] imapwhy ready."}},
			{send: "a1 LOGIN {5+}\r\nalice {6+}\r\nsecret\r\n", want: frontPrivacyLines("a1", "en")},
		}},
		{"PRIVACYREQUIRED in Japanese after LANGUAGE", frontConfig{Language: "ja"}, []frontStep{
			{want: []string{"* OK [CAPABILITY IMAP4rev1 SASL-IR LITERAL+ ID LANGUAGE LOGINDISABLED] imapwhy ready."}},
			{send: "a0 LANGUAGE DEFAULT\r\n", want: []string{"* LANGUAGE (JA)", "a0 OK " + frontTexts["ja"][frontMsgLanguageSet]}},
			{send: "a1 LOGIN {5+}\r\nalice {6+}\r\nsecret\r\n", want: frontPrivacyLines("a1", "ja")},
		}},
		{"ID", secure, []frontStep{
			{want: []string{frontGreetSecure}},
			{send: "a1 ID NIL\r\n", want: []string{`* ID ("name" "imapwhy")`, "a1 OK ID completed"}},
			{send: "a2 ID (\"name\" \"Thunderbird\" \"Version\" {6}\r\n", want: []string{"+ Ready for literal data"}},
			{send: "115.0\n \"os\" NIL \"vendor\" \"x\x00y\")\r\n", want: []string{"a2 BAD [CLIENTBUG] Invalid character in quoted string"}},
			{send: "a3 ID (\"name\" \"Thunderbird\" \"Version\" {6+}\r\n115.0\n \"os\" NIL \"name\" \"dup\")\r\n",
				want: []string{`* ID ("name" "imapwhy")`, "a3 OK ID completed"}},
			{send: "a4 LOGIN alice secret\r\n", login: &loginRequest{Tag: "a4", Mechanism: "LOGIN", Username: "alice", Password: "secret"},
				reply: func(f *front, req *loginRequest) error {
					want := map[string]string{"name": "Thunderbird", "version": "115.0"}
					if got := f.id; !reflect.DeepEqual(got, want) {
						return fmt.Errorf("id = %q, want %q", got, want)
					}
					return frontReplyFail(f, req)
				},
				want: frontFailLines("a4")},
			{send: "a5 ID (\r\n", want: []string{"a5 BAD [CLIENTBUG] Missing argument"}},
			{send: "a6 ID ()\r\n", want: []string{`* ID ("name" "imapwhy")`, "a6 OK ID completed"}},
		}},
		{"LANGUAGE", secure, []frontStep{
			{want: []string{frontGreetSecure}},
			{send: "a1 LANGUAGE\r\n", want: []string{"* LANGUAGE (EN JA)", "a1 OK Supported languages listed"}},
			{send: "a2 LANGUAGE fr\r\n", want: []string{"a2 NO Unsupported language"}},
			{send: "a3 LANGUAGE fr ja-JP\r\n", want: []string{"* LANGUAGE (JA)", "a3 OK 言語を日本語に切り替えました"}},
			{send: "a4 LANGUAGE\r\n", want: []string{"* LANGUAGE (EN JA)", "a4 OK 対応している言語の一覧です"}},
			{send: "a5 LANGUAGE de\r\n", want: []string{"a5 NO その言語には対応していません"}},
			{send: "a6 LANGUAGE ja_JP\r\n", want: []string{"a6 BAD [CLIENTBUG] Invalid language range"}},
			{send: "a7 LOGIN alice secret\r\n", login: &loginRequest{Tag: "a7", Mechanism: "LOGIN", Username: "alice", Password: "secret"},
				reply: func(f *front, req *loginRequest) error {
					if got := f.language(); got != "ja" {
						return fmt.Errorf("language() = %q, want ja", got)
					}
					return frontReplyFail(f, req)
				},
				want: frontFailLines("a7")},
			{send: "a8 LANGUAGE \"default\"\r\n", want: []string{"* LANGUAGE (EN)", "a8 OK Language changed to English"}},
		}},
		{"LANGUAGE and ID are forgotten after STARTTLS", frontConfig{TLSConfig: serverTLS, Language: "ja"}, []frontStep{
			{want: []string{frontGreetPlain}},
			{send: "a1 LANGUAGE en\r\n", want: []string{"* LANGUAGE (EN)", "a1 OK Language changed to English"}},
			{send: "a2 ID (\"name\" \"injected\")\r\n", want: []string{`* ID ("name" "imapwhy")`, "a2 OK ID completed"}},
			{send: "a3 STARTTLS\r\n", want: []string{"a3 OK Begin TLS negotiation now."}, tls: true},
			{send: "a4 LANGUAGE\r\n", want: []string{"* LANGUAGE (EN JA)", "a4 OK Supported languages listed"}},
			{send: "a5 LOGIN alice secret\r\n", login: &loginRequest{Tag: "a5", Mechanism: "LOGIN", Username: "alice", Password: "secret"},
				reply: func(f *front, req *loginRequest) error {
					if id, lang, page := f.id, f.language(), f.pageLanguage(); id != nil || lang != "en" || page != "ja" {
						return fmt.Errorf("after STARTTLS: id = %q, language() = %q, pageLanguage() = %q; want nil, en, ja", id, lang, page)
					}
					return frontReplyFail(f, req)
				},
				want: frontFailLines("a5")},
		}},
		{"bad commands, then BYE", frontConfig{Secure: true, Limits: config.Limits{MaxBadCommands: 6}}, []frontStep{
			{want: []string{frontGreetSecure}},
			{send: "a1 SELECT INBOX\r\n", want: []string{"a1 BAD Unknown command or not valid before login"}},
			{send: "\r\n", want: []string{"* BAD [CLIENTBUG] Invalid tag"}},
			{send: "a+ NOOP\r\n", want: []string{"* BAD [CLIENTBUG] Invalid tag"}},
			{send: "a2\r\n", want: []string{"a2 BAD [CLIENTBUG] Missing command"}},
			{send: "a3 NOOP now\r\n", want: []string{"a3 BAD [CLIENTBUG] Unexpected arguments"}},
			{send: "a4 LOGIN alice\r\n", want: []string{"a4 BAD [CLIENTBUG] Missing argument", "* BYE Too many invalid commands"},
				end: errFrontLimit, eof: true},
		}},
		{"literal of a refused command is skipped, not executed", secure, []frontStep{
			{want: []string{frontGreetSecure}},
			{send: "a1 XYZZY {6+}\r\na2 NOP\r\na3 NOOP\r\n", want: []string{"a1 BAD Unknown command or not valid before login", "a3 OK NOOP completed"}},
			// A synchronising literal of a refused command is not invited.
			{send: "a4 XYZZY {6}\r\n", want: []string{"a4 BAD Unknown command or not valid before login"}},
			{send: "a5 NOOP\r\n", want: []string{"a5 OK NOOP completed"}},
		}},
		{"too many commands", frontConfig{Secure: true, Limits: config.Limits{MaxCommands: 3}}, []frontStep{
			{want: []string{frontGreetSecure}},
			{send: "a1 NOOP\r\na2 NOOP\r\na3 NOOP\r\n", want: []string{"a1 OK NOOP completed", "a2 OK NOOP completed", "a3 OK NOOP completed",
				"* BYE Too many commands before login"}, end: errFrontLimit, eof: true},
		}},
		{"too many failed logins", frontConfig{Secure: true, Limits: config.Limits{MaxLoginTries: 2}}, []frontStep{
			{want: []string{frontGreetSecure}},
			{send: "a1 LOGIN alice one\r\n", login: &loginRequest{Tag: "a1", Mechanism: "LOGIN", Username: "alice", Password: "one"}, want: frontFailLines("a1")},
			{send: "a2 LOGIN alice two\r\n", login: &loginRequest{Tag: "a2", Mechanism: "LOGIN", Username: "alice", Password: "two"},
				want: append(frontFailLines("a2"), "* BYE Too many failed logins on this connection"), end: errFrontLimit, eof: true},
		}},
		{"over-long line", frontConfig{Secure: true, Limits: config.Limits{MaxLine: 64}}, []frontStep{
			{want: []string{frontGreetSecure}},
			{send: "a1 LOGIN alice " + strings.Repeat("x", 47) + "\r\n", login: &loginRequest{Tag: "a1", Mechanism: "LOGIN", Username: "alice", Password: strings.Repeat("x", 47)},
				want: frontFailLines("a1")},
			{send: "a2 LOGIN alice " + strings.Repeat("x", 48) + "\r\n", want: []string{"* BYE Command line too long"}, end: errFrontLimit, eof: true},
		}},
		{"line budget covers all segments of a command", frontConfig{Secure: true, Limits: config.Limits{MaxLine: 32}}, []frontStep{
			{want: []string{frontGreetSecure}},
			{send: "a1 LOGIN {5+}\r\nalice " + strings.Repeat("x", 16) + "\r\n", want: []string{"* BYE Command line too long"}, end: errFrontLimit, eof: true},
		}},
		{"huge synchronising literal is refused unread", frontConfig{Secure: true, Limits: config.Limits{MaxLiteral: 16}}, []frontStep{
			{want: []string{frontGreetSecure}},
			{send: "a1 LOGIN {16}\r\n", want: []string{"+ Ready for literal data"}},
			{send: "0123456789abcdef {17}\r\n", want: []string{"a1 NO [TOOBIG] Literal too large"}},
			{send: "a2 LOGIN alice {99999999999999999999}\r\n", want: []string{"a2 NO [TOOBIG] Literal too large"}},
			{send: "a3 NOOP\r\n", want: []string{"a3 OK NOOP completed"}},
			// All the literals of one command: at most twice MaxLiteral.
			{send: "a4 ID (\"a\" {16+}\r\n" + strings.Repeat("v", 16) + " \"b\" {16+}\r\n" + strings.Repeat("v", 16) + " \"c\" {1}\r\n",
				want: []string{"a4 NO [TOOBIG] Literal too large"}},
		}},
		{"huge LITERAL+ gets BYE", frontConfig{Secure: true, Limits: config.Limits{MaxLiteral: 16}}, []frontStep{
			{want: []string{frontGreetSecure}},
			{send: "a1 LOGIN alice {17+}\r\n", want: []string{"* BYE Literal too large"}, end: errFrontLimit, eof: true},
		}},
		{"pipelined commands after LOGIN stay in reader()", secure, []frontStep{
			{want: []string{frontGreetSecure}},
			{send: "a LOGIN u p\r\nb SELECT INBOX\r\n", login: &loginRequest{Tag: "a", Mechanism: "LOGIN", Username: "u", Password: "p"},
				reply: func(f *front, req *loginRequest) error {
					line, err := f.reader().ReadString('\n')
					if err != nil || line != "b SELECT INBOX\r\n" {
						return fmt.Errorf("reader() gave %q, %v", line, err)
					}
					return f.loggedIn(req.Tag, []string{"IMAP4rev1"})
				},
				want: []string{"a OK [CAPABILITY IMAP4rev1] Logged in"}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := frontStart(t, tt.cfg)
			for i, st := range tt.steps {
				h.step(i, st, clientTLS)
			}
		})
	}
}

// frontHarness runs a front end on one end of a loopback TCP connection,
// in its own goroutine, and plays the client on the other end.
type frontHarness struct {
	t      *testing.T
	conn   net.Conn
	r      *bufio.Reader
	events chan frontEvent                        // what next returned
	acts   chan func(*front, *loginRequest) error // how to answer a login
	done   chan struct{}
}

type frontEvent struct {
	req *loginRequest
	err error
}

func frontStart(t *testing.T, cfg frontConfig) *frontHarness {
	t.Helper()
	client, server := testkit.TCPPair(t)
	h := &frontHarness{
		t:      t,
		conn:   client,
		r:      bufio.NewReader(client),
		events: make(chan frontEvent, 1024),
		acts:   make(chan func(*front, *loginRequest) error),
		done:   make(chan struct{}),
	}
	go h.serve(server, cfg)
	t.Cleanup(func() {
		close(h.acts)
		h.conn.Close()
		select {
		case <-h.done:
		case <-time.After(frontTestWait):
			t.Error("front end did not stop")
		}
	})
	return h
}

// serve is the server side: next, then the test's answer, until an error.
func (h *frontHarness) serve(conn net.Conn, cfg frontConfig) {
	defer close(h.done)
	defer conn.Close()
	f := newFront(conn, cfg)
	for {
		req, err := f.next()
		h.events <- frontEvent{req, err}
		if err != nil {
			return
		}
		act, ok := <-h.acts
		if !ok {
			return
		}
		if err := act(f, req); err != nil {
			h.events <- frontEvent{err: fmt.Errorf("answering the login: %w", err)}
			return
		}
	}
}

func (h *frontHarness) step(i int, st frontStep, clientTLS *tls.Config) {
	t := h.t
	t.Helper()
	if st.send != "" {
		if _, err := io.WriteString(h.conn, st.send); err != nil {
			t.Fatalf("step %d: send: %v", i, err)
		}
	}
	if st.login != nil {
		ev := h.event(i)
		if ev.err != nil {
			t.Fatalf("step %d: next() = %v, want a login", i, ev.err)
		}
		got := *ev.req
		got.secret = nil
		if got != *st.login {
			t.Fatalf("step %d: next() = %+v, want %+v", i, *ev.req, *st.login)
		}
		reply := st.reply
		if reply == nil {
			reply = frontReplyFail
		}
		h.acts <- reply
	}
	for _, want := range st.want {
		got, err := h.r.ReadString('\n')
		if err != nil {
			t.Fatalf("step %d: reading %q: %v", i, want, err)
		}
		if got != want+"\r\n" {
			t.Fatalf("step %d: server sent %q, want %q", i, got, want+"\r\n")
		}
	}
	if st.tls {
		tc := tls.Client(h.conn, clientTLS)
		if err := tc.Handshake(); err != nil {
			t.Fatalf("step %d: client TLS handshake: %v", i, err)
		}
		h.conn, h.r = tc, bufio.NewReader(tc)
	}
	if st.end != nil {
		ev := h.event(i)
		if !errors.Is(ev.err, st.end) {
			t.Fatalf("step %d: next() = %+v, %v; want error %v", i, ev.req, ev.err, st.end)
		}
	}
	if st.eof {
		if rest, err := io.ReadAll(h.r); err != nil || len(rest) > 0 {
			t.Fatalf("step %d: after the end the server sent %q, %v", i, rest, err)
		}
	}
}

func (h *frontHarness) event(i int) frontEvent {
	h.t.Helper()
	select {
	case ev := <-h.events:
		return ev
	case <-time.After(frontTestWait):
		h.t.Fatalf("step %d: next() did not return", i)
		return frontEvent{}
	}
}

// frontRunFake runs the front end over an in-memory connection fed with
// input until next fails, answering every login with answer, and returns
// the output, the logins and the final error.
func frontRunFake(t *testing.T, cfg frontConfig, input io.Reader, answer func(*front, *loginRequest) error) (*frontFakeConn, []loginRequest, error) {
	t.Helper()
	conn := &frontFakeConn{in: input}
	f := newFront(conn, cfg)
	var logins []loginRequest
	for {
		req, err := f.next()
		if err != nil {
			return conn, logins, err
		}
		logins = append(logins, *req)
		if err := answer(f, req); err != nil {
			t.Fatalf("answering the login: %v", err)
		}
	}
}

// The STARTTLS check must see bytes pipelined behind the command: an
// in-memory conn delivers them in the same read, deterministically.
func TestPreauthStartTLSPipelinedRefused(t *testing.T) {
	serverTLS, _ := frontTestTLS(t)
	input := strings.NewReader("a1 STARTTLS\r\na2 LOGIN alice secret\r\n")
	conn, logins, err := frontRunFake(t, frontConfig{TLSConfig: serverTLS}, input, frontReplyFail)
	if !errors.Is(err, errFrontProtocol) || len(logins) != 0 {
		t.Fatalf("next() = %v after %d logins, want errFrontProtocol and none", err, len(logins))
	}
	want := frontGreetPlain + "\r\n" +
		"a1 BAD [CLIENTBUG] Data after STARTTLS refused\r\n" +
		"* BYE STARTTLS refused: data was sent after it\r\n"
	if got := conn.out.String(); got != want {
		t.Fatalf("server sent\n%q\nwant\n%q", got, want)
	}
}

// Pipelined bytes after the login are left in reader(), exactly.
func TestPreauthPipelinedAfterLogin(t *testing.T) {
	input := strings.NewReader("a LOGIN u p\r\nb SELECT INBOX\r\nc FETCH 1 BODY[]\r\n")
	conn := &frontFakeConn{in: input}
	f := newFront(conn, frontConfig{Secure: true})
	req, err := f.next()
	if err != nil || req.Username != "u" || req.Password != "p" {
		t.Fatalf("next() = %+v, %v", req, err)
	}
	const rest = "b SELECT INBOX\r\nc FETCH 1 BODY[]\r\n"
	if n := f.reader().Buffered(); n != len(rest) {
		t.Fatalf("reader() holds %d bytes, want %d", n, len(rest))
	}
	got, _ := f.reader().Peek(len(rest))
	if string(got) != rest {
		t.Fatalf("reader() holds %q, want %q", got, rest)
	}
}

// An endless line is refused after at most MaxLine bytes and one buffer
// more: it is never buffered whole.
func TestPreauthEndlessLineNotBuffered(t *testing.T) {
	lim := config.Limits{MaxLine: 1000}
	endless := io.MultiReader(strings.NewReader("a LOGIN alice "), frontEndless('x'))
	conn, _, err := frontRunFake(t, frontConfig{Secure: true, Limits: lim}, endless, frontReplyFail)
	if !errors.Is(err, errFrontLimit) {
		t.Fatalf("next() = %v, want errFrontLimit", err)
	}
	if max := int64(lim.MaxLine + 4096); conn.read > max {
		t.Fatalf("read %d bytes of the line, want at most %d", conn.read, max)
	}
	if !strings.HasSuffix(conn.out.String(), "* BYE Command line too long\r\n") {
		t.Fatalf("no BYE: %q", conn.out.String())
	}
}

// frontEndless reads as an endless run of c.
type frontEndless byte

func (e frontEndless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(e)
	}
	return len(p), nil
}

// A huge announced literal is neither allocated nor read.
func TestPreauthHugeLiteralNotRead(t *testing.T) {
	const first = "a LOGIN alice {4294967296}\r\n"
	lim := config.Limits{MaxLine: 8192}
	conn, _, err := frontRunFake(t, frontConfig{Secure: true, Limits: lim}, io.MultiReader(strings.NewReader(first), frontEndless('x')), frontReplyFail)
	// The literal is refused; the x's that follow make an over-long line.
	if !errors.Is(err, errFrontLimit) || conn.read > int64(len(first)+lim.MaxLine+4096) {
		t.Fatalf("next() = %v after reading %d bytes", err, conn.read)
	}
	if !strings.Contains(conn.out.String(), "a NO [TOOBIG] Literal too large\r\n") {
		t.Fatalf("no TOOBIG: %q", conn.out.String())
	}
}

func TestPreauthFailSanitises(t *testing.T) {
	conn := &frontFakeConn{in: strings.NewReader("")}
	f := newFront(conn, frontConfig{Secure: true})
	long := strings.Repeat("あ", 300)
	steps := []struct {
		do   func() error
		want string
	}{
		{func() error {
			return f.refuse(reply{tag: "a1", code: "AUTHENTICATIONFAILED", text: "bad\r\na1 OK [CAPABILITY IMAP4rev1] Logged in"})
		},
			"* OK [ALERT] bad a1 OK [CAPABILITY IMAP4rev1] Logged in\r\na1 NO [AUTHENTICATIONFAILED] bad a1 OK [CAPABILITY IMAP4rev1] Logged in\r\n"},
		{func() error { return f.refuse(reply{tag: "a2", code: "BAD]CODE", text: "\x00\x1b[31m\u202eevil\xff"}) },
			"* OK [ALERT] 31m evil\ufffd\r\na2 NO 31m evil\ufffd\r\n"},
		{func() error { return f.refuse(reply{tag: "a3", code: "", text: " \t "}) }, "* OK [ALERT] Login failed\r\na3 NO Login failed\r\n"},
		{func() error { return f.refuse(reply{tag: "a4", code: "UNAVAILABLE", text: long}) },
			"* OK [ALERT] " + strings.Repeat("あ", frontMaxText) + "\r\na4 NO [UNAVAILABLE] " + strings.Repeat("あ", frontMaxText) + "\r\n"},
		{func() error { return f.bye("shutting\ndown") }, "* BYE shutting down\r\n"},
	}
	for i, st := range steps {
		conn.out.Reset()
		if err := st.do(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if got := conn.out.String(); got != st.want {
			t.Errorf("step %d: wrote %q, want %q", i, got, st.want)
		}
	}
	if err := f.refuse(reply{tag: "bad tag", code: "X", text: "y"}); err == nil {
		t.Error("fail with an invalid tag: no error")
	}
	if err := f.loggedIn("a\r\n", nil); err == nil {
		t.Error("loggedIn with an invalid tag: no error")
	}
}

func TestSanitizeText(t *testing.T) {
	tests := []struct {
		in   string
		max  int
		want string
	}{
		{"plain text", 200, "plain text"},
		{"  trim\t\tand\r\n collapse  ", 200, "trim and collapse"},
		{"nul\x00del\x7fc1\u0085end", 200, "nul del c1 end"},
		{"line\u2028sep\u2029para", 200, "line sep para"},
		{"a\u202eb\u2066c", 200, "a b c"},
		{"bad\xffutf8\xc3", 200, "bad\ufffdutf8\ufffd"},
		{"日本語のテキスト", 3, "日本語"},
		{"ab cd", 3, "ab"},
		{"ab cd", 4, "ab c"},
		{"anything", 0, ""},
		{"", 10, ""},
	}
	for _, tt := range tests {
		if got := sanitizeText(tt.in, tt.max); got != tt.want {
			t.Errorf("sanitizeText(%q, %d) = %q, want %q", tt.in, tt.max, got, tt.want)
		}
	}
}

func TestFrontMatchLanguage(t *testing.T) {
	tests := []struct {
		r, def, want string
		ok           bool
	}{
		{"ja", "en", "ja", true},
		{"JA", "en", "ja", true},
		{"ja-JP", "en", "ja", true},
		{"ja-Jpan-JP", "en", "ja", true},
		{"ja-*", "en", "ja", true},
		{"en-US", "ja", "en", true},
		{"default", "ja", "ja", true},
		{"*", "en", "en", true},
		{"fr", "en", "", false},
		{"jav", "en", "", false},
		{"i-default", "en", "", false},
	}
	for _, tt := range tests {
		got, ok := frontMatchLanguage(tt.r, tt.def)
		if got != tt.want || ok != tt.ok {
			t.Errorf("frontMatchLanguage(%q, %q) = %q, %v; want %q, %v", tt.r, tt.def, got, ok, tt.want, tt.ok)
		}
	}
	for r, want := range map[string]bool{"ja": true, "ja-JP": true, "*": true, "de-*-DE": true, "en-419": true,
		"": false, "ja_JP": false, "12": false, "toolongtag": false, "ja--JP": false, "ja-": false} {
		if got := frontLanguageRange(r); got != want {
			t.Errorf("frontLanguageRange(%q) = %v, want %v", r, got, want)
		}
	}
}

// A zero frontConfig is bounded by config's defaults.
func TestFrontLimitsDefaults(t *testing.T) {
	got := frontLimits(config.Limits{MaxLine: 100, MaxCommands: -1})
	d := config.Default().Limits
	want := config.Limits{MaxLine: 100, MaxLiteral: d.MaxLiteral, MaxCommands: d.MaxCommands, MaxBadCommands: d.MaxBadCommands, MaxLoginTries: d.MaxLoginTries}
	if got != want {
		t.Fatalf("frontLimits = %+v, want %+v", got, want)
	}
}

// Python's imaplib as a second, real client: STARTTLS with certificate
// verification, LOGIN refused with our ALERT, AUTHENTICATE PLAIN through a
// continuation, LOGOUT.
func TestPreauthPythonImaplib(t *testing.T) {
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Fatal("python3 is needed for this test: ", err)
	}
	pki := testkit.NewPKI(t)
	serverTLS := pki.ServerConfig()
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, pki.CA.PEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	served := make(chan error, 1)
	go func() { served <- frontServeImaplib(ln, frontConfig{TLSConfig: serverTLS}) }()

	const script = `
import imaplib, ssl, sys
host, port, ca = sys.argv[1], int(sys.argv[2]), sys.argv[3]
m = imaplib.IMAP4(host, port, timeout=10)
print("before:", " ".join(m.capabilities))
m.starttls(ssl_context=ssl.create_default_context(cafile=ca))
print("after:", " ".join(m.capabilities))
try:
    m.login("alice", 'wrong "pass"')
except imaplib.IMAP4.error as e:
    print("login:", e)
    print("alert:", m.response("OK"))
typ, data = m.authenticate("PLAIN", lambda challenge: b"\0alice\0s\xc3\xa9cret")
print("authenticate:", typ, data)
print("logout:", m.logout()[0])
`
	host, port, _ := net.SplitHostPort(ln.Addr().String())
	ctx, cancel := context.WithTimeout(context.Background(), frontTestWait)
	defer cancel()
	out, err := exec.CommandContext(ctx, python, "-c", script, host, port, caFile).CombinedOutput()
	if err != nil {
		t.Fatalf("imaplib: %v\n%s", err, out)
	}
	want := `before: IMAP4REV1 SASL-IR LITERAL+ ID LANGUAGE STARTTLS LOGINDISABLED
after: IMAP4REV1 SASL-IR LITERAL+ ID LANGUAGE AUTH=PLAIN
login: b'[AUTHENTICATIONFAILED] Wrong password'
alert: ('OK', [b'[ALERT] Wrong password'])
authenticate: OK [b'[CAPABILITY IMAP4rev1] Logged in']
logout: BYE
`
	if string(out) != want {
		t.Errorf("imaplib printed\n%s\nwant\n%s", out, want)
	}
	select {
	case err := <-served:
		if err != nil {
			t.Error(err)
		}
	case <-time.After(frontTestWait):
		t.Error("server did not end")
	}
}

// frontServeImaplib serves one connection for TestPreauthPythonImaplib: it
// fails the LOGIN, accepts the PLAIN login and expects LOGOUT.
func frontServeImaplib(ln net.Listener, cfg frontConfig) error {
	conn, err := ln.Accept()
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(frontTestWait))
	f := newFront(conn, cfg)
	want := []loginRequest{
		{Tag: "", Mechanism: "LOGIN", Username: "alice", Password: `wrong "pass"`},
		{Tag: "", Mechanism: "PLAIN", Username: "alice", Password: "sécret"},
	}
	for i, w := range want {
		req, err := f.next()
		if err != nil {
			return fmt.Errorf("login %d: %w", i, err)
		}
		w.Tag = req.Tag // imaplib's own tags
		got := *req
		got.secret = nil
		if got != w {
			return fmt.Errorf("login %d: got %+v, want %+v", i, got, w)
		}
		if i == 0 {
			err = frontReplyFail(f, req)
		} else {
			err = f.loggedIn(req.Tag, []string{"IMAP4rev1"})
		}
		if err != nil {
			return err
		}
	}
	if _, err := f.next(); !errors.Is(err, errLogout) {
		return fmt.Errorf("after the logins: %v, want errLogout", err)
	}
	return nil
}
