package upstream

import (
	"bufio"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/imapwhy/imapwhy/diagnose"
)

func TestWireParse(t *testing.T) {
	tests := []struct {
		line string
		want wireResponse
	}{
		{"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] ready", wireResponse{kind: wireUntagged, name: "OK", text: "[CAPABILITY IMAP4rev1 AUTH=PLAIN] ready",
			status: diagnose.Response{Status: "OK", Code: "CAPABILITY", CodeArg: "IMAP4rev1 AUTH=PLAIN", Text: "ready"}}},
		{"* NO [WEBALERT https://accounts.google.com/x?a=1&b=2] Web login required.", wireResponse{kind: wireUntagged, name: "NO", text: "[WEBALERT https://accounts.google.com/x?a=1&b=2] Web login required.",
			status: diagnose.Response{Status: "NO", Code: "WEBALERT", CodeArg: "https://accounts.google.com/x?a=1&b=2", Text: "Web login required."}}},
		{"a2 no [authenticationfailed] Authentication failed.", wireResponse{kind: wireTagged, tag: "a2", name: "NO", text: "[authenticationfailed] Authentication failed.",
			status: diagnose.Response{Tagged: true, Status: "NO", Code: "AUTHENTICATIONFAILED", Text: "Authentication failed."}}},
		{"a1 OK", wireResponse{kind: wireTagged, tag: "a1", name: "OK", status: diagnose.Response{Tagged: true, Status: "OK"}}},
		{"* BYE [ALERT]", wireResponse{kind: wireUntagged, name: "BYE", text: "[ALERT]", status: diagnose.Response{Status: "BYE", Code: "ALERT"}}},
		{"* OK [no closing bracket", wireResponse{kind: wireUntagged, name: "OK", text: "[no closing bracket", status: diagnose.Response{Status: "OK", Text: "[no closing bracket"}}},
		{"* capability IMAP4rev1 IDLE", wireResponse{kind: wireUntagged, name: "CAPABILITY", text: "IMAP4rev1 IDLE"}},
		{"* 23 EXISTS", wireResponse{kind: wireUntagged, name: "EXISTS"}},
		{"+ Ready for literal data", wireResponse{kind: wireContinuation, text: "Ready for literal data"}},
		{"+", wireResponse{kind: wireContinuation}},
		{"+OK POP3 ready", wireResponse{kind: wireTagged, tag: "+OK", name: "POP3", text: "ready"}},
	}
	for _, tc := range tests {
		tc.want.line = tc.line
		if got := wireParse(tc.line); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("wireParse(%q)\n got %+v\nwant %+v", tc.line, got, tc.want)
		}
	}
}

func TestWireRead(t *testing.T) {
	tests := []struct {
		name, input string
		want        []string // first lines of the responses read
		wantErr     error    // after them; nil means io.EOF
	}{
		{name: "crlf and bare lf", input: "* OK one\r\n* OK two\n", want: []string{"* OK one", "* OK two"}},
		{name: "literal in a data response", input: "* ID (\"name\" {7}\r\nDovecot \"os\" {5}\r\nLinux)\r\na1 OK done\r\n", want: []string{`* ID ("name" {7}`, "a1 OK done"}},
		{name: "a status text is never a literal", input: "a1 NO try {5}\r\n* OK next\r\n", want: []string{"a1 NO try {5}", "* OK next"}},
		{name: "eof inside a line", input: "* OK trunc", wantErr: io.ErrUnexpectedEOF},
		{name: "eof inside a literal", input: "* ID ({10}\r\nabc", wantErr: io.ErrUnexpectedEOF},
		{name: "over-long line", input: "* OK " + strings.Repeat("x", wireMaxLine) + "\r\n", wantErr: &ProtocolError{}},
		{name: "literal over the bound", input: "* ID ({999999999}\r\n", wantErr: &ProtocolError{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			br := bufio.NewReader(strings.NewReader(tc.input))
			var got []string
			var err error
			for {
				var r wireResponse
				if r, err = wireRead(br); err != nil {
					break
				}
				got = append(got, r.line)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("read %q, want %q", got, tc.want)
			}
			switch want := tc.wantErr.(type) {
			case nil:
				if err != io.EOF {
					t.Errorf("err = %v, want EOF", err)
				}
			case *ProtocolError:
				if _, ok := errors.AsType[*ProtocolError](err); !ok {
					t.Errorf("err = %v, want a protocol error", err)
				}
			default:
				if !errors.Is(err, want) {
					t.Errorf("err = %v, want %v", err, want)
				}
			}
		})
	}
}

func TestWireEncoder(t *testing.T) {
	never := func(int) bool { return false }
	always := func(int) bool { return true }
	tests := []struct {
		name  string
		build func() *wireEncoder
		want  []string // chunks
	}{
		{"quoted", func() *wireEncoder { return wireNewCommand("a1", "LOGIN", never).str("alice").str(`p"a\ss`) },
			[]string{"a1 LOGIN \"alice\" \"p\\\"a\\\\ss\"\r\n"}},
		{"empty string", func() *wireEncoder { return wireNewCommand("a1", "LOGIN", never).str("").str("") },
			[]string{"a1 LOGIN \"\" \"\"\r\n"}},
		{"8-bit synchronising", func() *wireEncoder { return wireNewCommand("a1", "LOGIN", never).str("alice").str("pässwörd") },
			[]string{"a1 LOGIN \"alice\" {10}\r\n", "pässwörd\r\n"}},
		{"control character goes literal", func() *wireEncoder { return wireNewCommand("a1", "LOGIN", never).str("alice").str("tab\there") },
			[]string{"a1 LOGIN \"alice\" {8}\r\n", "tab\there\r\n"}},
		{"non-synchronising", func() *wireEncoder { return wireNewCommand("a1", "LOGIN", always).str("jörg").str("pässwörd") },
			[]string{"a1 LOGIN {5+}\r\njörg {10+}\r\npässwörd\r\n"}},
		{"list", func() *wireEncoder { return wireNewCommand("a1", "ID", never).list("name", "imapwhy", "x", "ü") },
			[]string{"a1 ID (\"name\" \"imapwhy\" \"x\" {2}\r\n", "ü)\r\n"}},
		{"authenticate by continuation", func() *wireEncoder {
			return wireNewCommand("a1", "AUTHENTICATE", never).atom("PLAIN").respond("AGFsaWNl").cancelWith("*")
		}, []string{"a1 AUTHENTICATE PLAIN\r\n", "AGFsaWNl\r\n"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cmd, err := tc.build().finish()
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, c := range cmd.chunks {
				got = append(got, string(c))
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("chunks %q, want %q", got, tc.want)
			}
		})
	}
}

func TestWireEncoderRefusesNUL(t *testing.T) {
	if _, err := wireNewCommand("a1", "LOGIN", nil).str("alice").str("pa\x00ss").finish(); !errors.Is(err, errWireNUL) {
		t.Errorf("err = %v, want errWireNUL", err)
	}
}

func TestWireWipe(t *testing.T) {
	cmd, err := wireNewCommand("a1", "LOGIN", nil).str("alice").str("secret").finish()
	if err != nil {
		t.Fatal(err)
	}
	cmd.wipe()
	for _, c := range cmd.chunks {
		if strings.Contains(string(c), "secret") {
			t.Errorf("chunk %q still holds the password", c)
		}
	}
}

func TestUpstreamMechanism(t *testing.T) {
	tests := []struct {
		caps    string
		authzid bool
		want    string
	}{
		{"IMAP4REV1 AUTH=PLAIN AUTH=LOGIN", false, "PLAIN"},
		{"IMAP4REV1 AUTH=LOGIN", false, "LOGIN"},
		{"IMAP4REV1", false, "LOGIN"},
		{"IMAP4REV1 AUTH=XOAUTH2", false, "LOGIN"},
		{"IMAP4REV1 AUTH=XOAUTH2 LOGINDISABLED", false, ""},
		{"IMAP4REV1 AUTH=PLAIN LOGINDISABLED", false, ""},
		{"IMAP4REV1 STARTTLS LOGINDISABLED", false, ""},
		{"IMAP4REV1 AUTH=PLAIN", true, "PLAIN"},
		{"IMAP4REV1", true, ""},
	}
	for _, tc := range tests {
		cred := Credentials{User: "alice", Password: "secret"}
		if tc.authzid {
			cred.Authzid = "admin"
		}
		if got := ChooseMechanism(strings.Fields(tc.caps), cred); got != tc.want {
			t.Errorf("ChooseMechanism(%q, authzid=%v) = %q, want %q", tc.caps, tc.authzid, got, tc.want)
		}
	}
}
