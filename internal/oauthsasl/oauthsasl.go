// Package oauthsasl reads and writes the client messages of the two SASL
// mechanisms that carry an OAuth 2.0 bearer token: OAUTHBEARER (RFC 7628)
// and Google's XOAUTH2 (https://developers.google.com/gmail/imap/xoauth2-protocol).
// Both are sent base64-encoded in AUTHENTICATE; this package handles the
// decoded bytes.
//
// The token is a password: errors never quote a message or any part of it.
package oauthsasl

import (
	"errors"
	"strconv"
	"strings"
)

// The mechanism names.
const (
	XOAUTH2     = "XOAUTH2"
	OAUTHBEARER = "OAUTHBEARER"
)

// MaxMessage bounds a message: JWT access tokens run to a few kilobytes
// (Microsoft's are 2-3 KB); 16 KB leaves room without letting a
// client send megabytes before login.
const MaxMessage = 16 << 10

// Message is one client message: who signs in, and with which token.
type Message struct {
	Mechanism string // XOAUTH2 or OAUTHBEARER
	User      string // the user name (OAUTHBEARER: the authzid, unescaped)
	Token     string // the bearer token
	Host      string // OAUTHBEARER's optional host and port fields
	Port      int
}

// Errors. None quotes the message.
var (
	ErrMechanism = errors.New("oauthsasl: not XOAUTH2 or OAUTHBEARER")
	ErrTooLong   = errors.New("oauthsasl: message too long")
	ErrSyntax    = errors.New("oauthsasl: malformed message")
	ErrNoUser    = errors.New("oauthsasl: message names no user")
	ErrNoToken   = errors.New("oauthsasl: message carries no bearer token")
	ErrToken     = errors.New("oauthsasl: bearer token has characters RFC 6750 does not allow")
	ErrUser      = errors.New("oauthsasl: user name has control characters")
)

// Is reports whether mech (any case) is one of the two mechanisms, and
// returns its canonical name.
func Is(mech string) (string, bool) {
	switch strings.ToUpper(mech) {
	case XOAUTH2:
		return XOAUTH2, true
	case OAUTHBEARER:
		return OAUTHBEARER, true
	}
	return "", false
}

// Parse reads a decoded client message of mech.
func Parse(mech string, data []byte) (Message, error) {
	name, ok := Is(mech)
	if !ok {
		return Message{}, ErrMechanism
	}
	if len(data) > MaxMessage {
		return Message{}, ErrTooLong
	}
	m := Message{Mechanism: name}
	fields := strings.Split(string(data), "\x01")
	if name == OAUTHBEARER {
		// gs2-header: "n,a=user," (or "y,"); channel binding ("p=") is
		// not offered.
		gs2 := strings.Split(fields[0], ",")
		if len(gs2) != 3 || (gs2[0] != "n" && gs2[0] != "y") || gs2[2] != "" {
			return Message{}, ErrSyntax
		}
		if a, ok := strings.CutPrefix(gs2[1], "a="); ok {
			u, err := unescapeSASLName(a)
			if err != nil {
				return Message{}, err
			}
			m.User = u
		} else if gs2[1] != "" {
			return Message{}, ErrSyntax
		}
		fields = fields[1:]
	}
	for i, f := range fields {
		if f == "" {
			// The message ends with two ^A: empty fields at the end.
			if i >= len(fields)-2 {
				continue
			}
			return Message{}, ErrSyntax
		}
		key, value, ok := strings.Cut(f, "=")
		if !ok {
			return Message{}, ErrSyntax
		}
		switch key {
		case "user":
			if name == XOAUTH2 {
				m.User = value
			}
		case "auth":
			scheme, tok, ok := strings.Cut(value, " ")
			if !ok || !strings.EqualFold(scheme, "Bearer") {
				return Message{}, ErrNoToken
			}
			m.Token = tok
		case "host":
			m.Host = value
		case "port":
			p, err := strconv.Atoi(value)
			if err != nil || p < 0 || p > 65535 {
				return Message{}, ErrSyntax
			}
			m.Port = p
		}
	}
	if m.Token == "" {
		return Message{}, ErrNoToken
	}
	if !ValidToken(m.Token) {
		return Message{}, ErrToken
	}
	if m.User == "" {
		return Message{}, ErrNoUser
	}
	if strings.ContainsFunc(m.User, isControl) || strings.ContainsFunc(m.Host, isControl) {
		return Message{}, ErrUser
	}
	return m, nil
}

// Encode writes m as the client message of m.Mechanism (XOAUTH2 when
// empty). m must be valid: a user without control characters and a token
// ValidToken accepts (Encode does not check; Parse does).
func Encode(m Message) []byte {
	var b strings.Builder
	if m.Mechanism == OAUTHBEARER {
		b.WriteString("n,a=")
		b.WriteString(escapeSASLName(m.User))
		b.WriteString(",")
		if m.Host != "" {
			b.WriteString("\x01host=" + m.Host)
		}
		if m.Port != 0 {
			b.WriteString("\x01port=" + strconv.Itoa(m.Port))
		}
		b.WriteString("\x01auth=Bearer ")
	} else {
		b.WriteString("user=" + m.User + "\x01auth=Bearer ")
	}
	b.WriteString(m.Token)
	b.WriteString("\x01\x01")
	return []byte(b.String())
}

// ValidToken reports whether tok is an RFC 6750 b64token:
// 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
func ValidToken(tok string) bool {
	body := strings.TrimRight(tok, "=")
	if body == "" {
		return false
	}
	for _, c := range []byte(body) {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/':
		default:
			return false
		}
	}
	return true
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// unescapeSASLName undoes RFC 5801's saslname escaping (=2C is ",",
// =3D is "=").
func unescapeSASLName(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case ',':
			return "", ErrSyntax
		case '=':
			switch {
			case strings.HasPrefix(s[i:], "=2C"):
				b.WriteByte(',')
			case strings.HasPrefix(s[i:], "=3D"):
				b.WriteByte('=')
			default:
				return "", ErrSyntax
			}
			i += 2
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}

func escapeSASLName(s string) string {
	return strings.NewReplacer("=", "=3D", ",", "=2C").Replace(s)
}

// Client is a SASL client (go-sasl's sasl.Client, as imapclient takes it)
// for XOAUTH2 or OAUTHBEARER (XOAUTH2 when Mechanism is empty). It sends
// the message, and answers a server's error challenge as each mechanism
// wants: XOAUTH2 with an empty response (as Google documents), OAUTHBEARER
// with a lone ^A (RFC 7628 section 3.2.3); the server then sends its NO.
type Client struct {
	Mechanism, User, Token string
}

// Start returns the mechanism and the message, for SASL-IR.
func (c Client) Start() (string, []byte, error) {
	mech := c.Mechanism
	if mech == "" {
		mech = XOAUTH2
	}
	return mech, Encode(Message{Mechanism: mech, User: c.User, Token: c.Token}), nil
}

// Next answers an error challenge.
func (c Client) Next([]byte) ([]byte, error) {
	if c.Mechanism == OAUTHBEARER {
		return []byte{1}, nil
	}
	return []byte{}, nil
}
