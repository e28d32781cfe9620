package setup

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
)

// Payload types of a configuration profile, as Apple's Device Management
// documentation names them.
const (
	payloadProfile = "Configuration"
	payloadRootCA  = "com.apple.security.root"
	payloadMail    = "com.apple.mail.managed"
	payloadWebClip = "com.apple.webClip.managed"
)

// identifierBase prefixes every PayloadIdentifier of the profiles.
const identifierBase = "io.github.imapwhy.setup"

// account is what a profile, an autoconfig file and the settings card say
// about one address.
type account struct {
	Email    string
	IMAPHost string
	IMAPPort int
	IMAPTLS  string // "implicit" or "starttls"
	SMTP     smtpServer
}

// profileInput is one profile's content.
type profileInput struct {
	account
	Lang          string
	CADER         []byte // nil: no root certificate payload (the certificate is public)
	CAName        string
	CAFingerprint string
	StatusURL     string // "": no Web Clip
}

// payloadIDs derives a profile's identifiers from the address alone, so
// that installing the profile again (a new address of the PC, a renewed
// CA) replaces the installed one rather than adding a second.
func payloadIDs(email, part string) (identifier, uuid string) {
	email = strings.ToLower(email)
	who := sha256.Sum256([]byte("imapwhy set-up profile\x00" + email))
	id := identifierBase + "." + hex.EncodeToString(who[:8])
	if part != "" {
		id += "." + part
	}
	sum := sha256.Sum256([]byte("imapwhy set-up payload\x00" + email + "\x00" + part))
	u := sum[:16]
	u[6] = u[6]&0x0f | 0x80 // version 8: application-defined (RFC 9562)
	u[8] = u[8]&0x3f | 0x80 // RFC 9562 variant
	return id, strings.ToUpper(fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16]))
}

// payload is the keys every payload carries.
func payload(typ, email, part, name, description string) dict {
	id, uuid := payloadIDs(email, part)
	return dict{
		{"PayloadType", typ},
		{"PayloadVersion", 1},
		{"PayloadIdentifier", id},
		{"PayloadUUID", uuid},
		{"PayloadDisplayName", name},
		{"PayloadDescription", description},
	}
}

// buildProfile returns the configuration profile (an XML property list,
// unsigned) for one address: the local CA, the Mail account through
// imapwhy, and the home-screen icon of the status page. It holds no
// password: Mail asks for it.
func buildProfile(in profileInput) []byte {
	t := textFor(in.Lang)
	var content []any
	if in.CADER != nil {
		ca := payload(payloadRootCA, in.Email, "ca", in.CAName,
			fmt.Sprintf(t.ProfileCADescription, in.CAFingerprint))
		ca = append(ca, entry{"PayloadCertificateFileName", "imapwhy-ca.crt"}, entry{"PayloadContent", in.CADER})
		content = append(content, ca)
	}
	mail := payload(payloadMail, in.Email, "mail", t.ProfileMailName,
		fmt.Sprintf(t.ProfileMailDescription, in.Email))
	smtpUser := in.SMTP.Username(in.Email)
	mail = append(mail,
		entry{"EmailAccountDescription", "imapwhy: " + in.Email},
		entry{"EmailAccountType", "EmailTypeIMAP"},
		entry{"EmailAddress", in.Email},
		entry{"IncomingMailServerAuthentication", "EmailAuthPassword"},
		entry{"IncomingMailServerHostName", in.IMAPHost},
		entry{"IncomingMailServerPortNumber", in.IMAPPort},
		entry{"IncomingMailServerUseSSL", true},
		entry{"IncomingMailServerUsername", in.Email},
		entry{"OutgoingMailServerAuthentication", "EmailAuthPassword"},
		entry{"OutgoingMailServerHostName", in.SMTP.Host},
		entry{"OutgoingMailServerPortNumber", in.SMTP.Port},
		entry{"OutgoingMailServerUseSSL", true},
		entry{"OutgoingMailServerUsername", smtpUser},
		entry{"OutgoingPasswordSameAsIncomingPassword", true},
	)
	content = append(content, mail)
	if in.StatusURL != "" {
		clip := payload(payloadWebClip, in.Email, "webclip", t.WebClipLabel, t.WebClipDescription)
		clip = append(clip,
			entry{"Label", t.WebClipLabel},
			entry{"URL", in.StatusURL},
			entry{"IsRemovable", true},
			entry{"FullScreen", false},
			entry{"Icon", webClipIcon()},
			entry{"Precomposed", true},
		)
		content = append(content, clip)
	}
	desc := fmt.Sprintf(t.ProfileDescription, in.IMAPHost)
	if in.CAFingerprint != "" {
		desc += "\n\n" + fmt.Sprintf(t.ProfileCADescription, in.CAFingerprint)
	}
	top := payload(payloadProfile, in.Email, "", fmt.Sprintf(t.ProfileName, in.Email), desc)
	top = append(top,
		entry{"PayloadOrganization", "imapwhy"},
		entry{"PayloadRemovalDisallowed", false},
		entry{"PayloadContent", content},
	)
	return encodePlist(top)
}
