package proxy

// LOGIN (RFC 9051 §6.2.3) and AUTHENTICATE PLAIN (RFC 9051 §6.2.2, SASL-IR
// RFC 4959, PLAIN RFC 4616), XOAUTH2 and OAUTHBEARER (RFC 7628) before login.

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"

	"github.com/imapwhy/imapwhy/internal/oauthsasl"
)

// cmdLogin: LOGIN SP userid SP password, both astrings.
func (f *front) cmdLogin() (*loginRequest, error) {
	f.cur.credentials = true
	if err := f.argSP(); err != nil {
		return nil, err
	}
	user, err := f.argAstring()
	if err != nil {
		return nil, err
	}
	if err := f.argSP(); err != nil {
		return nil, err
	}
	pass, err := f.cur.r.SecretAstring(f.inviteLiteral)
	if err != nil {
		return nil, f.wireErr(err)
	}
	err = f.argEnd()
	f.cur.r.Wipe()
	if err != nil {
		clear(pass)
		return nil, err
	}
	if !f.secure() {
		clear(pass)
		return nil, f.refusePlaintext()
	}
	req := &loginRequest{Tag: f.cur.tag, Mechanism: "LOGIN", Username: user}
	req.setPassword(pass)
	return req, nil
}

// cmdAuthenticate: AUTHENTICATE SP auth-type [SP (base64 / "=")]. PLAIN,
// XOAUTH2 and OAUTHBEARER are taken; the message comes in the initial
// response (SASL-IR) or in one continuation line, bounded by MaxLine.
func (f *front) cmdAuthenticate() (*loginRequest, error) {
	if err := f.argSP(); err != nil {
		return nil, err
	}
	mech, err := f.argAtom()
	if err != nil {
		return nil, err
	}
	hasIR, err := f.argNext()
	if err != nil {
		return nil, err
	}
	// The response aliases the line buffer: decoded, then wiped.
	var ir []byte
	if hasIR {
		ir = f.cur.r.TokenBytes()
	}
	defer f.cur.r.Wipe()
	if err := f.argEnd(); err != nil {
		return nil, err
	}
	oauthMech, isOAuth := oauthsasl.Is(mech)
	if !strings.EqualFold(mech, "PLAIN") && !isOAuth {
		// RFC 5530 CANNOT: this server will never do that mechanism.
		f.tagged("NO", "CANNOT", "Unsupported authentication mechanism")
		return nil, nil
	}
	if !f.secure() {
		// Without SASL-IR no "+" is sent, so the password never comes.
		return nil, f.refusePlaintext()
	}
	if !hasIR {
		line, err := f.readContinuation()
		if err != nil {
			return nil, err
		}
		defer clear(line)
		if string(line) == "*" {
			// RFC 9051 §6.2.2: a cancelled exchange gets BAD. Not the
			// client's fault, so it does not count towards MaxBadCommands.
			f.tagged("BAD", "", "Authentication cancelled")
			return nil, nil
		}
		ir = line
	}
	if isOAuth {
		return f.oauthRequest(oauthMech, ir)
	}
	return f.plainRequest(ir)
}

// oauthRequest decodes a base64 XOAUTH2 or OAUTHBEARER message (RFC 7628)
// into a login request: the user in the message and its bearer token.
func (f *front) oauthRequest(mech string, b64 []byte) (*loginRequest, error) {
	msg, err := frontDecodeBase64(b64)
	if err != nil {
		return nil, frontSyntax("Invalid base64 data")
	}
	m, err := oauthsasl.Parse(mech, msg)
	clear(msg)
	if err != nil {
		f.failures++
		f.tagged("NO", "AUTHENTICATIONFAILED", "Malformed "+mech+" message")
		return nil, nil
	}
	return &loginRequest{Tag: f.cur.tag, Mechanism: mech, Username: m.User, Password: m.Token}, nil
}

// readContinuation asks for the client's SASL response ("+ " with an empty
// challenge) and reads its line, which aliases the front end's line
// buffer: the caller wipes it once decoded.
func (f *front) readContinuation() ([]byte, error) {
	f.writeLine("+ ")
	if err := f.flush(); err != nil {
		return nil, err
	}
	line, _, err := f.readSegment(f.lim.MaxLine)
	return line, err
}

// plainRequest decodes a base64 PLAIN message into a login request.
func (f *front) plainRequest(b64 []byte) (*loginRequest, error) {
	msg, err := frontDecodeBase64(b64)
	if err != nil {
		// RFC 9051 §6.2.2: invalid base64 MUST get a tagged BAD.
		return nil, frontSyntax("Invalid base64 data")
	}
	authzid, user, pass, err := frontDecodePlain(msg)
	clear(msg) // the password in bytes: wiped once copied out
	if err != nil {
		f.failures++
		f.tagged("NO", "AUTHENTICATIONFAILED", "Malformed PLAIN credentials")
		return nil, nil
	}
	req := &loginRequest{Tag: f.cur.tag, Mechanism: "PLAIN", Username: user, Authzid: authzid}
	req.setPassword(pass)
	return req, nil
}

// frontDecodeBase64 decodes a SASL response: "=" (the empty initial
// response, RFC 4959) and an empty continuation line are empty; anything
// else must be padded base64.
func frontDecodeBase64(s []byte) ([]byte, error) {
	if string(s) == "=" || len(s) == 0 {
		return nil, nil
	}
	out := make([]byte, base64.StdEncoding.DecodedLen(len(s)))
	n, err := base64.StdEncoding.Decode(out, s)
	if err != nil {
		clear(out)
		return nil, err
	}
	return out[:n], nil
}

var errFrontPlain = errors.New("malformed PLAIN message")

// frontDecodePlain splits a PLAIN message: [authzid] NUL authcid NUL passwd
// (RFC 4616 §2). An empty user name or password is passed on: the diagnosis
// can explain it. The password is a copy the caller owns.
func frontDecodePlain(msg []byte) (authzid, authcid string, passwd []byte, err error) {
	parts := bytes.Split(msg, []byte{0})
	if len(parts) != 3 {
		return "", "", nil, errFrontPlain
	}
	return string(parts[0]), string(parts[1]), bytes.Clone(parts[2]), nil
}

// refusePlaintext refuses credentials on a connection that is not private
// (RFC 9051 §6.2.3, RFC 5530 PRIVACYREQUIRED), with an ALERT that tells
// the user what to change. It counts as a failed login.
func (f *front) refusePlaintext() error {
	if err := f.refuse(reply{tag: f.cur.tag, code: "PRIVACYREQUIRED", text: f.text(frontMsgPrivacy)}); err != nil {
		return err
	}
	return errFrontAnswered
}
