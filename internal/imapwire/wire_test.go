package imapwire

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
)

func TestParseResponse(t *testing.T) {
	tests := []struct {
		line string
		want Response
	}{
		{"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] ready", Response{Kind: Untagged, Name: "OK", Text: "[CAPABILITY IMAP4rev1 AUTH=PLAIN] ready",
			Status: Status{Type: "OK", Code: "CAPABILITY", CodeArg: "IMAP4rev1 AUTH=PLAIN", Text: "ready"}}},
		{"* NO [WEBALERT https://accounts.google.com/x?a=1&b=2] Web login required.", Response{Kind: Untagged, Name: "NO", Text: "[WEBALERT https://accounts.google.com/x?a=1&b=2] Web login required.",
			Status: Status{Type: "NO", Code: "WEBALERT", CodeArg: "https://accounts.google.com/x?a=1&b=2", Text: "Web login required."}}},
		{"a2 no [authenticationfailed] Authentication failed.", Response{Kind: Tagged, Tag: "a2", Name: "NO", Text: "[authenticationfailed] Authentication failed.",
			Status: Status{Type: "NO", Code: "AUTHENTICATIONFAILED", Text: "Authentication failed."}}},
		{"a1 OK", Response{Kind: Tagged, Tag: "a1", Name: "OK", Status: Status{Type: "OK"}}},
		{"* BYE [ALERT]", Response{Kind: Untagged, Name: "BYE", Text: "[ALERT]", Status: Status{Type: "BYE", Code: "ALERT"}}},
		{"* OK [no closing bracket", Response{Kind: Untagged, Name: "OK", Text: "[no closing bracket", Status: Status{Type: "OK", Text: "[no closing bracket"}}},
		{"* capability IMAP4rev1 IDLE", Response{Kind: Untagged, Name: "CAPABILITY", Text: "IMAP4rev1 IDLE"}},
		{"* 23 EXISTS", Response{Kind: Untagged, Name: "EXISTS"}},
		{"+ Ready for literal data", Response{Kind: Continuation, Text: "Ready for literal data"}},
		{"+", Response{Kind: Continuation}},
		{"+OK POP3 ready", Response{Kind: Tagged, Tag: "+OK", Name: "POP3", Text: "ready"}},
	}
	for _, tc := range tests {
		tc.want.Line = tc.line
		if got := ParseResponse(tc.line); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseResponse(%q)\n got %+v\nwant %+v", tc.line, got, tc.want)
		}
	}
}

func TestReadResponse(t *testing.T) {
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
		{name: "over-long line", input: "* OK " + strings.Repeat("x", 64<<10) + "\r\n", wantErr: &TooLongError{}},
		{name: "literal over the bound", input: "* ID ({999999999}\r\n", wantErr: &TooLongError{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			br := bufio.NewReader(strings.NewReader(tc.input))
			var got []string
			var err error
			for {
				var r Response
				if r, err = ReadResponse(br, ResponseLimits{MaxLine: 64 << 10, MaxResponse: 256 << 10}); err != nil {
					break
				}
				got = append(got, r.Line)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("read %q, want %q", got, tc.want)
			}
			switch want := tc.wantErr.(type) {
			case nil:
				if err != io.EOF {
					t.Errorf("err = %v, want EOF", err)
				}
			case *TooLongError:
				if _, ok := errors.AsType[*TooLongError](err); !ok {
					t.Errorf("err = %v, want a *TooLongError", err)
				}
			default:
				if !errors.Is(err, want) {
					t.Errorf("err = %v, want %v", err, want)
				}
			}
		})
	}
}

func TestEncoder(t *testing.T) {
	never := func(int) bool { return false }
	always := func(int) bool { return true }
	tests := []struct {
		name  string
		build func() *Encoder
		want  []string // chunks
	}{
		{"quoted", func() *Encoder { return NewCommand("a1", "LOGIN", never).String("alice").String(`p"a\ss`) },
			[]string{"a1 LOGIN \"alice\" \"p\\\"a\\\\ss\"\r\n"}},
		{"empty string", func() *Encoder { return NewCommand("a1", "LOGIN", never).String("").String("") },
			[]string{"a1 LOGIN \"\" \"\"\r\n"}},
		{"8-bit synchronising", func() *Encoder { return NewCommand("a1", "LOGIN", never).String("alice").String("pässwörd") },
			[]string{"a1 LOGIN \"alice\" {10}\r\n", "pässwörd\r\n"}},
		{"control character goes literal", func() *Encoder { return NewCommand("a1", "LOGIN", never).String("alice").String("tab\there") },
			[]string{"a1 LOGIN \"alice\" {8}\r\n", "tab\there\r\n"}},
		{"non-synchronising", func() *Encoder { return NewCommand("a1", "LOGIN", always).String("jörg").String("pässwörd") },
			[]string{"a1 LOGIN {5+}\r\njörg {10+}\r\npässwörd\r\n"}},
		{"list", func() *Encoder { return NewCommand("a1", "ID", never).List("name", "imapwhy", "x", "ü") },
			[]string{"a1 ID (\"name\" \"imapwhy\" \"x\" {2}\r\n", "ü)\r\n"}},
		{"authenticate by continuation", func() *Encoder {
			return NewCommand("a1", "AUTHENTICATE", never).Atom("PLAIN").Respond("AGFsaWNl").CancelWith("*")
		}, []string{"a1 AUTHENTICATE PLAIN\r\n", "AGFsaWNl\r\n"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cmd, err := tc.build().Finish()
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, c := range cmd.Chunks {
				got = append(got, string(c))
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("chunks %q, want %q", got, tc.want)
			}
		})
	}
}

func TestEncoderRefusesNUL(t *testing.T) {
	if _, err := NewCommand("a1", "LOGIN", nil).String("alice").String("pa\x00ss").Finish(); !errors.Is(err, ErrNUL) {
		t.Errorf("err = %v, want ErrNUL", err)
	}
}

func TestWipe(t *testing.T) {
	cmd, err := NewCommand("a1", "LOGIN", nil).String("alice").String("secret").Finish()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Wipe()
	for _, c := range cmd.Chunks {
		if strings.Contains(string(c), "secret") {
			t.Errorf("chunk %q still holds the password", c)
		}
	}
}

func TestSplitLiteral(t *testing.T) {
	tests := []struct {
		line string
		text string
		ok   bool
		lit  Literal
	}{
		{"a LOGIN {5}", "a LOGIN ", true, Literal{Sync: true, Size: 5}},
		{"a LOGIN {05+}", "a LOGIN ", true, Literal{Size: 5}},
		{"a LOGIN {0}", "a LOGIN ", true, Literal{Sync: true, Size: 0}},
		{"{7}", "", true, Literal{Sync: true, Size: 7}},
		{"a LOGIN {99999999999999999999}", "a LOGIN ", true, Literal{Sync: true, Size: 1<<63 - 1}},
		{"a LOGIN {}", "a LOGIN {}", false, Literal{}},
		{"a LOGIN {+}", "a LOGIN {+}", false, Literal{}},
		{"a LOGIN {5a}", "a LOGIN {5a}", false, Literal{}},
		{"a LOGIN 5}", "a LOGIN 5}", false, Literal{}},
		{"}", "}", false, Literal{}},
	}
	for _, tt := range tests {
		text, lit, ok := SplitLiteral([]byte(tt.line))
		if string(text) != tt.text || ok != tt.ok || lit != tt.lit {
			t.Errorf("SplitLiteral(%q) = %q, %+v, %v; want %q, %+v, %v", tt.line, text, lit, ok, tt.text, tt.lit, tt.ok)
		}
	}
}

func TestReadLine(t *testing.T) {
	br := bufio.NewReaderSize(strings.NewReader("* OK ready\r\nbare LF\n"+strings.Repeat("x", 40)+"\r\n"), 16)
	for _, want := range []string{"* OK ready", "bare LF"} {
		if line, raw, err := ReadLine(br, nil, 32); err != nil || string(line) != want || !strings.HasPrefix(string(raw), want) {
			t.Errorf("ReadLine = %q, %q, %v; want %q", line, raw, err, want)
		}
	}
	if _, _, err := ReadLine(br, nil, 32); !errors.As(err, new(*TooLongError)) {
		t.Errorf("an over-long line: %v", err)
	}
	br = bufio.NewReader(strings.NewReader("* OK no line end"))
	if _, _, err := ReadLine(br, nil, 100); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("a line without its end: %v", err)
	}
}

// TestCommandReader reads commands as the pre-auth front end does: tag and
// name, the three forms of a string, literals invited or refused, and the
// bounds.
func TestCommandReader(t *testing.T) {
	read := func(input string, invite func(Literal) error) (tag, name string, args []string, err error) {
		r := &CommandReader{MaxLine: 64, MaxLiteral: 8}
		if err = r.Next(bufio.NewReader(strings.NewReader(input))); err != nil {
			return r.Tag, r.Name, nil, err
		}
		for !r.AtEnd() {
			if err = r.SP(); err != nil {
				break
			}
			var a string
			if a, err = r.Astring(invite); err != nil {
				break
			}
			args = append(args, a)
		}
		return r.Tag, r.Name, args, err
	}
	var invited []Literal
	invite := func(l Literal) error { invited = append(invited, l); return nil }
	refuse := errors.New("refused")

	tag, name, args, err := read("a1 login  alice \"p\\\"w\" {3}\r\nxyz {2+}\r\nok\r\n", invite)
	if err != nil || tag != "a1" || name != "LOGIN" || !reflect.DeepEqual(args, []string{"alice", `p"w`, "xyz", "ok"}) {
		t.Errorf("got %q %q %q %v", tag, name, args, err)
	}
	if !reflect.DeepEqual(invited, []Literal{{Size: 3, Sync: true}}) {
		t.Errorf("invited %+v, want only the synchronising literal", invited)
	}

	tests := []struct {
		input   string
		invite  func(Literal) error
		wantErr any // an error to match with errors.Is, or a pointer for errors.As
		wantTag string
	}{
		{"+a LOGIN\r\n", invite, new(*SyntaxError), ""},
		{"a1 (x\r\n", invite, new(*SyntaxError), "a1"},
		{"a1 LOGIN \"open\r\n", invite, new(*SyntaxError), "a1"},
		{"a1 LOGIN {3}\r\nxyz\r\n", func(Literal) error { return refuse }, refuse, "a1"},
		{"a1 LOGIN {9}\r\n", invite, new(*LiteralError), "a1"},
		{"a1 LOGIN {3}\r\nx\x00z\r\n", invite, new(*SyntaxError), "a1"},
		{"a1 LOGIN " + strings.Repeat("x", 64) + "\r\n", invite, new(*TooLongError), ""},
	}
	for _, tc := range tests {
		tag, _, _, err := read(tc.input, tc.invite)
		var ok bool
		if target, isErr := tc.wantErr.(error); isErr {
			ok = errors.Is(err, target)
		} else {
			ok = errors.As(err, tc.wantErr)
		}
		if !ok || tag != tc.wantTag {
			t.Errorf("%q: tag %q, err %v; want tag %q, err %T", tc.input, tag, err, tc.wantTag, tc.wantErr)
		}
	}
}

// TestCommandReaderSkip: the rest of a refused command is read and
// dropped, non-synchronising literals included, so that the next command
// starts where it should.
func TestCommandReaderSkip(t *testing.T) {
	br := bufio.NewReader(strings.NewReader("a1 XYZZY {4+}\r\nA2 X\r\na2 NOOP\r\n"))
	r := &CommandReader{MaxLine: 64, MaxLiteral: 8}
	if err := r.Next(br); err != nil || r.Name != "XYZZY" {
		t.Fatalf("first command: %q %v", r.Name, err)
	}
	if err := r.Skip(); err != nil {
		t.Fatal(err)
	}
	if err := r.Next(br); err != nil || r.Tag != "a2" || r.Name != "NOOP" {
		t.Errorf("next command: %q %q %v", r.Tag, r.Name, err)
	}
	r.Next(bufio.NewReader(strings.NewReader("a1 X {9+}\r\n")))
	if err := r.Skip(); !errors.As(err, new(*LiteralError)) {
		t.Errorf("skipping a literal over the bound: %v", err)
	}
}

// FuzzReadResponse: whatever a server sends, ReadResponse stays within its
// bounds and never panics; what it returns was read off the input.
func FuzzReadResponse(f *testing.F) {
	for _, seed := range []string{
		"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] ready\r\n",
		"* ID (\"name\" {7}\r\nDovecot)\r\na1 OK done\r\n",
		"a1 NO [AUTHENTICATIONFAILED] no {5}\r\n",
		"+ \r\n",
		"* 1 FETCH (BODY[] {99999999999999999999}\r\n",
		"* X ~{3}\r\nabc\r\n",
	} {
		f.Add(seed)
	}
	lim := ResponseLimits{MaxLine: 64, MaxResponse: 256}
	f.Fuzz(func(t *testing.T, input string) {
		br := bufio.NewReaderSize(strings.NewReader(input), 16)
		for range 100 {
			r, err := ReadResponse(br, lim)
			if err != nil {
				return
			}
			if len(r.Line) > lim.MaxLine || !strings.Contains(input, r.Line) {
				t.Fatalf("line %q: over the bound or not from the input", r.Line)
			}
			if r.IsStatus() != IsStatusName(r.Name) || (r.Kind == Continuation && r.IsStatus()) {
				t.Fatalf("%+v: status and keyword disagree", r)
			}
		}
	})
}

// TestSecretsWiped: the reader's line buffer and an encoder's outgrown
// buffers keep no password once the command is done and wiped.
func TestSecretsWiped(t *testing.T) {
	const pass = "hunter2-correct-horse-battery"
	r := &CommandReader{MaxLine: 1000, MaxLiteral: 1000}
	if err := r.Next(bufio.NewReader(strings.NewReader("a1 LOGIN alice " + pass + "\r\n"))); err != nil {
		t.Fatal(err)
	}
	r.SP()
	if _, err := r.Astring(nil); err != nil {
		t.Fatal(err)
	}
	r.SP()
	got, err := r.SecretAstring(nil)
	if err != nil || string(got) != pass {
		t.Fatalf("SecretAstring = %q, %v", got, err)
	}
	buf := r.buf[:cap(r.buf)]
	r.Wipe()
	if bytes.Contains(buf, []byte(pass)) {
		t.Error("the line buffer still holds the password after Wipe")
	}

	e := NewCommand("a1", "LOGIN", nil)
	var seen [][]byte
	e.grow(0)
	for i := 0; i < 3; i++ { // every grow's old buffer is wiped
		seen = append(seen, e.buf[:cap(e.buf)])
		e.String(pass)
	}
	cmd, err := e.Finish()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Wipe()
	for _, b := range append(seen, cmd.Chunks...) {
		if bytes.Contains(b, []byte(pass)) {
			t.Errorf("a buffer of the encoder still holds the password: %q", b)
		}
	}
}
