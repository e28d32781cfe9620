package diagnose

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// diagnosis turns the verdict into a Diagnosis.
func (ev *evidence) diagnosis(v verdict) Diagnosis {
	d := Diagnosis{
		Cause:       v.cause,
		Code:        v.cause.Code(),
		Confidence:  v.confidence,
		Temporary:   v.cause.Temporary(),
		Alternative: v.alternative,
		Detail:      ev.detail(),
		Held:        ev.o.History.Held && !ev.o.History.Stranger,
	}
	if d.Alternative == d.Cause {
		d.Alternative = ""
	}
	if v.cause == CauseAccountLocked || v.cause == CauseAccountTooManyConnections {
		// "LIMIT (or the upstream's)": pass on what the server said.
		if r := ev.reply; r != nil {
			if c := strings.ToUpper(r.Code); c == codeLimit || c == codeUnavailable {
				d.Code = c
			}
		}
	}
	if e := ev.rec.best(); e != nil {
		d.Provider = e.ID
		d.ProviderName = e.Name
		d.HelpURL = e.helpFor(v.cause)
	}
	return d
}

// helpFor picks the provider's help page for the fix of a cause.
func (e *entry) helpFor(c Cause) string {
	pick := func(get func(HelpPages) string) string {
		if u := get(e.Help); u != "" {
			return u
		}
		if u := get(e.primary().Help); u != "" {
			return u
		}
		if u := e.Help.General; u != "" {
			return u
		}
		return e.primary().Help.General
	}
	if c.IsOAuth() {
		return oauthHelp(e.primary().ID, c)
	}
	switch c {
	case CauseProviderAppPasswordRequired:
		return pick(func(h HelpPages) string { return h.AppPassword })
	case CauseProviderIMAPDisabled:
		return pick(func(h HelpPages) string { return h.EnableIMAP })
	case CauseProviderOAuthRequired:
		return pick(func(h HelpPages) string { return h.OAuth })
	case CauseProviderWebLoginRequired:
		return pick(func(h HelpPages) string { return h.WebLogin })
	case CauseAccountPasswordExpired, CauseCredentialsPasswordChanged:
		return pick(func(h HelpPages) string { return h.Password })
	case CauseCredentialsRejected, CauseUsernameMissingDomain, CauseAccountLocked, CauseAccountDisabled:
		return pick(func(h HelpPages) string { return h.General })
	}
	return ""
}

// maxDetail bounds Diagnosis.Detail (bytes).
const maxDetail = 300

// detail quotes what the server said (or the mail app showed), for logs.
func (ev *evidence) detail() string {
	o := ev.o
	switch {
	case ev.reply != nil && ev.reply.FromApp:
		// Not the server's words: no "NO" it never sent.
		shown := *ev.reply
		shown.Status = ""
		return sanitizeLine("the mail app showed: "+formatResponse(&shown), maxDetail)
	case ev.reply != nil:
		return sanitizeLine(formatResponse(ev.reply), maxDetail)
	case o.NotIMAP != "":
		return sanitizeLine("not IMAP: "+o.NotIMAP, maxDetail)
	case o.NetError != NetOK:
		return sanitizeLine(string(o.Phase)+": "+string(o.NetError), maxDetail)
	}
	return ""
}

// formatResponse renders a response as it was on the wire, without tag.
func formatResponse(r *Response) string {
	var b strings.Builder
	b.WriteString(r.Status)
	if r.Code != "" {
		b.WriteString(" [")
		b.WriteString(r.Code)
		if r.CodeArg != "" {
			b.WriteByte(' ')
			b.WriteString(r.CodeArg)
		}
		b.WriteByte(']')
	}
	if r.Text != "" {
		b.WriteByte(' ')
		b.WriteString(r.Text)
	}
	return strings.TrimSpace(b.String())
}

// sanitizeLine makes s one line of valid UTF-8 without control characters,
// with runs of white space collapsed, at most max bytes long.
func sanitizeLine(s string, max int) string {
	s = strings.ToValidUTF8(s, "?")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' || unicode.Is(unicode.Cf, r) {
			return ' '
		}
		return r
	}, s)
	return cutBytes(strings.Join(strings.Fields(s), " "), max, "...")
}

// cutBytes returns s if it is at most max bytes long; otherwise its longest
// prefix that ends at a character boundary and leaves room for mark, then
// mark.
func cutBytes(s string, max int, mark string) string {
	if len(s) <= max {
		return s
	}
	cut := max - len(mark)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + mark
}
