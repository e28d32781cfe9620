package diagnose

import (
	"strings"
)

// ResponseCode is the response code of the line imapwhy adds to each of
// its refusals, for programs rather than people:
//
//	S: * OK [X-IMAPWHY cause=provider.app_password_required confidence=medium code=AUTHENTICATIONFAILED provider=gmail] imapwhy diagnosis
//
// An untagged OK with a code a client does not know is ignored by it (RFC
// 9051 §7.1), so mail apps show nothing; `imapwhy check`, `explain` and
// support tools read the cause instead of guessing it from the prose.
// notice=1 marks a login imapwhy let into its notice mailbox (the real
// login failed); held=1 a password imapwhy did not send again.
const ResponseCode = "X-IMAPWHY"

// ReportText is the human-readable text after the code.
const ReportText = "imapwhy diagnosis"

// Report renders d as the arguments of a ResponseCode line. Every value
// is an atom: the cause and code from the table, confidence from its
// three values, the provider ID from the catalog.
func (d Diagnosis) Report(notice bool) string {
	fields := []string{"cause=" + string(d.Cause), "confidence=" + string(d.Confidence), "code=" + d.Cause.Code()}
	if d.Alternative.Valid() {
		fields = append(fields, "alternative="+string(d.Alternative))
	}
	if providerByID(d.Provider) != nil {
		fields = append(fields, "provider="+d.Provider)
	}
	if d.Held {
		fields = append(fields, "held=1")
	}
	if notice {
		fields = append(fields, "notice=1")
	}
	return strings.Join(fields, " ")
}

// Reported is what a ResponseCode line said: imapwhy's own diagnosis.
type Reported struct {
	Diagnosis Diagnosis
	Notice    bool // the login was let into the notice mailbox
}

// ParseReport reads the arguments of a ResponseCode line. ok is false
// when they name no known cause.
func ParseReport(args string) (r Reported, ok bool) {
	var d Diagnosis
	for _, f := range strings.Fields(args) {
		k, v, _ := strings.Cut(f, "=")
		switch k {
		case "cause":
			d.Cause = Cause(v)
		case "confidence":
			switch c := Confidence(v); c {
			case High, Medium, Low:
				d.Confidence = c
			}
		case "alternative":
			if Cause(v).Valid() {
				d.Alternative = Cause(v)
			}
		case "provider":
			if e := providerByID(v); e != nil {
				d.Provider, d.ProviderName = e.ID, e.Name
			}
		case "held":
			d.Held = v == "1"
		case "notice":
			r.Notice = v == "1"
		}
	}
	if !d.Cause.Valid() {
		return Reported{}, false
	}
	if d.Confidence == "" {
		d.Confidence = Medium
	}
	d.Code, d.Temporary = d.Cause.Code(), d.Cause.Temporary()
	if e := providerByID(d.Provider); e != nil {
		d.HelpURL = e.helpFor(d.Cause)
	}
	d.Detail = "imapwhy's own diagnosis"
	r.Diagnosis = d
	return r, true
}

// reported finds imapwhy's ResponseCode line among the untagged
// responses of an observation.
func reported(o *Observation) (Reported, bool) {
	for _, u := range o.Untagged {
		if strings.EqualFold(u.Code, ResponseCode) && strings.EqualFold(u.Status, "OK") {
			return ParseReport(u.CodeArg)
		}
	}
	return Reported{}, false
}

// ReportedBy says whether the server of an observation is imapwhy that
// reported its diagnosis (a ResponseCode line), and what it said.
func ReportedBy(o Observation) (Reported, bool) { return reported(&o) }
