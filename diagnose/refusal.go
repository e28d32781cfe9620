package diagnose

import "strings"

// refusal explains a refusal that says nothing more than "no".
func (ev *evidence) refusal() verdict {
	if hasCap(ev.o.Capabilities, "LOGINDISABLED") && passwordMechanism(ev.o.Mechanism) && ev.o.TLSMode != "implicit" {
		// The server said beforehand that it refuses LOGIN on this
		// connection until it is encrypted. Sure when the connection is
		// known to be plain; a pasted transcript may not show the
		// capabilities after STARTTLS.
		v := verdict{cause: CauseServerPrivacyRequired, confidence: High}
		if ev.o.TLSMode == "" {
			v.confidence = Medium
		}
		return v
	}
	switch ev.reply.Status {
	case "BYE":
		// The server hung up during login without saying why.
		return verdict{cause: CauseServerTemporaryFailure, confidence: Low, alternative: CauseCredentialsRejected}
	case "BAD":
		return ev.badCommand()
	}
	if !passwordMechanism(ev.o.Mechanism) {
		// An OAuth token was refused: nothing here is about passwords.
		return fallback
	}
	if f, ok := ev.typedFault(); ok && f.confidence == High {
		// Certainly wrong as typed (an empty password), whatever the
		// provider wants besides.
		return f
	}
	if ev.refusesPasswords() {
		v := verdict{cause: CauseProviderOAuthRequired, confidence: ev.providerConfidence(Medium), alternative: CauseCredentialsRejected}
		if h, ok := ev.history(); ok {
			v.alternative = h.cause
		} else if f, ok := ev.typedFault(); ok {
			v.alternative = f.cause
		}
		return v
	}
	guess := ev.providerGuess()
	guess.confidence = ev.providerConfidence(guess.confidence)
	if v, ok := ev.history(); ok {
		return withAlternative(v, guess.cause)
	}
	if v, ok := ev.typedFault(); ok {
		if v.alternative == "" {
			v = withAlternative(v, guess.cause)
		}
		return v
	}
	return guess
}

// badCommand: the server answered the login command with BAD. It did not
// accept the command as sent, which says nothing about the password's
// value: servers answer BAD for an empty password, a password or user
// name their parser chokes on, a malformed command or one in the wrong
// state. What was typed tells which, where it is known.
func (ev *evidence) badCommand() verdict {
	if f, ok := ev.typedFault(); ok {
		switch f.cause {
		case CausePasswordEmpty, CausePasswordNonASCII, CausePasswordFullwidth,
			CausePasswordSurroundingSpace, CauseUsernameSurroundingSpace, CauseUsernameFullwidth:
			f.alternative = CauseServerBadCommand
			return f
		}
	}
	return verdict{cause: CauseServerBadCommand, confidence: Medium, alternative: CauseServerNoUsableMechanism}
}

// withAlternative sets alt as the alternative when it adds something.
func withAlternative(v verdict, alt Cause) verdict {
	if v.alternative == "" && alt != v.cause && alt != CauseCredentialsRejected {
		v.alternative = alt
	}
	return v
}

// refusesPasswords: the provider takes no passwords over IMAP (Exchange
// Online), or an unknown server offers only OAuth mechanisms.
func (ev *evidence) refusesPasswords() bool {
	if p := ev.rec.provider; p != nil {
		return !p.AcceptsPasswords
	}
	return oauthOnly(ev.o.Capabilities)
}

// providerConfidence caps what provider facts may claim when the provider
// is only guessed from the user's email domain or from the wording of a
// text, not seen in the server.
func (ev *evidence) providerConfidence(c Confidence) Confidence {
	if ev.rec.byUser || ev.rec.byText {
		return Low
	}
	return c
}

// history explains a refusal by what worked before.
func (ev *evidence) history() (verdict, bool) {
	h := ev.o.History
	switch {
	case h.CaseInvertedWorked:
		return verdict{cause: CauseCredentialsCapsLock, confidence: High}, true
	case h.TrimmedWorked:
		return verdict{cause: CausePasswordSurroundingSpace, confidence: High}, true
	case h.FoldedWorked:
		return verdict{cause: CausePasswordFullwidth, confidence: High}, true
	case h.SamePasswordWorked:
		return verdict{cause: CauseCredentialsPasswordChanged, confidence: Medium}, true
	}
	return verdict{}, false
}

// typedFault explains a refusal by what was typed. Order: the faults that
// certainly break a login first.
func (ev *evidence) typedFault() (verdict, bool) {
	t := ev.o.Typed
	switch {
	case t.PasswordEmpty:
		return verdict{cause: CausePasswordEmpty, confidence: High}, true
	case t.PasswordSurroundingSpace:
		return verdict{cause: CausePasswordSurroundingSpace, confidence: Medium}, true
	case t.PasswordFullwidth:
		return verdict{cause: CausePasswordFullwidth, confidence: Medium}, true
	case t.UserSurroundingSpace:
		return verdict{cause: CauseUsernameSurroundingSpace, confidence: Medium}, true
	case t.UserFullwidth:
		return verdict{cause: CauseUsernameFullwidth, confidence: Medium}, true
	case t.Username != "" && !t.UserHasDomain && ev.usernameForm() == UsernameAddress:
		return verdict{cause: CauseUsernameMissingDomain, confidence: Medium}, true
	case t.PasswordNonASCII:
		// Valid in a password, but many servers and apps mangle it.
		return verdict{cause: CausePasswordNonASCII, confidence: Low, alternative: CauseCredentialsRejected}, true
	}
	return verdict{}, false
}

// usernameForm is what the recognised provider or software wants.
func (ev *evidence) usernameForm() UsernameForm {
	for _, e := range ev.knownEntries() {
		if e.Username != UsernameAny {
			return e.Username
		}
	}
	return UsernameAny
}

// providerGuess is what an unexplained refusal most likely means for the
// recognised provider.
func (ev *evidence) providerGuess() verdict {
	p := ev.rec.provider
	if p != nil {
		if p.refusal != nil {
			return *p.refusal
		}
		if q := p.primary(); q.refusal != nil {
			return *q.refusal
		}
		switch p.AppPasswords {
		case AppPasswordsRequired:
			return ev.appPasswordGuess(p)
		case AppPasswordsOptional:
			if ev.looksLikeAppPassword(p) {
				return fallback
			}
			return verdict{cause: CauseCredentialsRejected, confidence: Low, alternative: CauseProviderAppPasswordRequired}
		}
	}
	t := ev.o.Typed
	if t.Username != "" && !t.UserHasDomain && ev.usernameForm() == UsernameAny {
		return verdict{cause: CauseCredentialsRejected, confidence: Low, alternative: CauseUsernameMissingDomain}
	}
	return fallback
}

// appPasswordGuess: a provider that only takes app passwords refused a
// password. If the password does not look like one of its app passwords,
// the user most likely typed the account password.
func (ev *evidence) appPasswordGuess(p *entry) verdict {
	shaped := shapeEntry(p)
	switch {
	case !ev.o.Typed.passwordKnown() || shaped == nil:
		return verdict{cause: CauseProviderAppPasswordRequired, confidence: Low, alternative: CauseCredentialsRejected}
	case ev.looksLikeAppPassword(p):
		// An app password that is wrong or was revoked.
		return fallback
	}
	return verdict{cause: CauseProviderAppPasswordRequired, confidence: shaped.shapeConf, alternative: CauseCredentialsRejected}
}

func (ev *evidence) looksLikeAppPassword(p *entry) bool {
	shaped := shapeEntry(p)
	if shaped == nil || !ev.o.Typed.passwordKnown() {
		return false
	}
	for _, id := range ev.o.Typed.AppPasswordShapes {
		if id == shaped.ID {
			return true
		}
	}
	return false
}

// shapeEntry is the entry that defines p's app-password shape.
func shapeEntry(p *entry) *entry {
	if p.shape != nil {
		return p
	}
	if q := p.primary(); q.shape != nil {
		return q
	}
	return nil
}

// passwordKnown: the facts were computed from a typed password (explain
// without one leaves them all zero).
func (t Typed) passwordKnown() bool {
	return t.PasswordEmpty || t.PasswordLength > 0
}

func passwordMechanism(m string) bool {
	switch strings.ToUpper(m) {
	case "", "LOGIN", "PLAIN":
		return true
	}
	return false
}

func hasCap(caps []string, c string) bool {
	for _, x := range caps {
		if strings.EqualFold(x, c) {
			return true
		}
	}
	return false
}

// oauthOnly: the server offers OAuth and no password mechanism.
func oauthOnly(caps []string) bool {
	oauth, password := false, false
	for _, c := range caps {
		switch strings.ToUpper(c) {
		case "AUTH=XOAUTH2", "AUTH=OAUTHBEARER", "AUTH=XOAUTH":
			oauth = true
		case "AUTH=PLAIN", "AUTH=LOGIN":
			password = true
		}
	}
	return oauth && !password
}
