package bridge

// Connecting an account: the device authorization grant (RFC 8628) for a
// terminal, and the authorization code flow with PKCE on imapwhy's own
// pages. Both end with the grant sealed under the app password the person
// will type in the mail app: a generated one, shown once, or their own.

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"golang.org/x/oauth2"

	"github.com/imapwhy/imapwhy/diagnose"
)

// Paths of the pages.
const (
	ConnectPath    = "/connect"
	CallbackPath   = "/connect/callback"
	DisconnectPath = "/connect/disconnect"
)

// Paths are the patterns the pages are served under.
var Paths = []string{ConnectPath, CallbackPath, DisconnectPath}

// passwordAlphabet has no look-alikes (0/O, 1/l/I).
const passwordAlphabet = "abcdefghijkmnopqrstuvwxyz23456789"

// NewPassword returns a generated app password: 24 characters from 33
// (about 121 bits) in groups of four, easy to copy and to type.
func NewPassword() string {
	var b strings.Builder
	r := make([]byte, 24)
	rand.Read(r)
	for i, x := range r {
		if i > 0 && i%4 == 0 {
			b.WriteByte('-')
		}
		// 256 % 33 != 0: draw again to stay uniform.
		for int(x) >= 256-256%len(passwordAlphabet) {
			var one [1]byte
			rand.Read(one[:])
			x = one[0]
		}
		b.WriteByte(passwordAlphabet[int(x)%len(passwordAlphabet)])
	}
	return b.String()
}

// CheckOwnPassword says why a password the person chose cannot be an app
// password ("" if it can).
func CheckOwnPassword(pw string) string {
	switch {
	case utf8.RuneCountInString(pw) < 12:
		return "at least 12 characters, please"
	case len(pw) > 256:
		return "at most 256 bytes, please"
	case strings.TrimSpace(pw) != pw:
		return "no spaces at the start or the end, please"
	}
	return ""
}

// save seals the refresh token of tok for user under password and forgets
// any cached access token.
func (b *Bridge) save(p *provider, user, password string, tok *oauth2.Token) error {
	if tok == nil || tok.RefreshToken == "" {
		return errors.New("the provider gave no refresh token (offline access was not granted)")
	}
	who := identity(tok)
	if old, err := b.opts.Store.Load(user); err == nil && old.Identity != "" && who != "" && !strings.EqualFold(old.Identity, who) {
		// Someone else's connection is not replaced by signing in as
		// oneself: the account's own app password forgets it first.
		return ErrOtherIdentity
	}
	rec, err := newRecord(user, p.cfg.Name, password, b.opts.Params, grant{RefreshToken: tok.RefreshToken})
	if err != nil {
		return err
	}
	rec.Identity = who
	if err := b.opts.Store.Save(rec); err != nil {
		return err
	}
	b.opts.Logger.Info().Str("event", "oauth_bridge_connected").Str("user", rec.User).Str("provider", p.cfg.Name).
		Msg("account connected to the OAuth bridge")
	b.mu.Lock()
	delete(b.cache, normal(user))
	b.mu.Unlock()
	return nil
}

// ErrOtherIdentity: the address is connected already, to another account
// of the provider.
var ErrOtherIdentity = errors.New("this address is connected to another account of the provider; forget that connection first (with its app password, or imapwhy disconnect)")

// identity is whom the tokens name: the ID token's user claim (received
// straight from the token endpoint over TLS), else the access token's when
// it is a JWT; "" when they do not say.
func identity(tok *oauth2.Token) string {
	if id, ok := tok.Extra("id_token").(string); ok {
		if u := diagnose.ReadToken(id).User; u != "" {
			return strings.ToLower(u)
		}
	}
	return strings.ToLower(diagnose.ReadToken(tok.AccessToken).User)
}

// Device is what the person must do to approve a device connection.
type Device struct {
	VerificationURI, UserCode string
	// VerificationURIComplete has the code in it ("" if the provider
	// gives none).
	VerificationURIComplete string
}

// ConnectDevice connects user's account by the device flow: show is
// called with what the person must do, then ConnectDevice polls until they
// have approved it (or ctx ends). password "" means a generated one; the
// app password is returned.
func (b *Bridge) ConnectDevice(ctx context.Context, user, password string, show func(Device)) (string, error) {
	p := b.provider(user)
	if p == nil {
		return "", fmt.Errorf("%s is not an account of the oauth_bridge configuration (domains, users)", user)
	}
	if password == "" {
		password = NewPassword()
	} else if why := CheckOwnPassword(password); why != "" {
		return "", errors.New("app password: " + why)
	}
	conf, err := p.config(ctx, "")
	if err != nil {
		return "", err
	}
	if conf.Endpoint.DeviceAuthURL == "" {
		return "", errors.New("the provider offers no device flow; connect on the /connect page")
	}
	pctx := p.ctx(ctx)
	da, err := conf.DeviceAuth(pctx)
	if err != nil {
		return "", fmt.Errorf("device authorization: %w", safeErr(err))
	}
	show(Device{VerificationURI: da.VerificationURI, UserCode: da.UserCode, VerificationURIComplete: da.VerificationURIComplete})
	tok, err := conf.DeviceAccessToken(pctx, da)
	if err != nil {
		return "", fmt.Errorf("waiting for the approval: %w", safeErr(err))
	}
	if err := b.save(p, user, password, tok); err != nil {
		return "", err
	}
	return password, nil
}

// safeErr keeps an OAuth error's code and description, never a body that
// might hold a token.
func safeErr(err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		if re.ErrorCode != "" {
			return fmt.Errorf("%s: %s", re.ErrorCode, re.ErrorDescription)
		}
		return fmt.Errorf("HTTP %d", re.Response.StatusCode)
	}
	return err
}
