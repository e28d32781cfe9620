package imapwire

import (
	"bufio"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
)

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
