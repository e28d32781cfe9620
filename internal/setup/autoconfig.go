package setup

import (
	"bytes"
	"encoding/xml"
)

// autoconfigFile is Thunderbird's clientConfig (config-v1.1.xml) for an
// address, or for any address of a domain when email is "": the IMAP
// servers are imapwhy's listeners, the SMTP server is the provider's.
func autoconfigFile(domain string, email string, imapHost string, listeners []Listener, smtp smtpServer) []byte {
	type server struct {
		Type           string `xml:"type,attr"`
		Hostname       string `xml:"hostname"`
		Port           int    `xml:"port"`
		SocketType     string `xml:"socketType"`
		Username       string `xml:"username"`
		Authentication string `xml:"authentication"`
	}
	type provider struct {
		ID               string   `xml:"id,attr"`
		Domain           string   `xml:"domain"`
		DisplayName      string   `xml:"displayName"`
		DisplayShortName string   `xml:"displayShortName"`
		Incoming         []server `xml:"incomingServer"`
		Outgoing         []server `xml:"outgoingServer"`
	}
	type clientConfig struct {
		XMLName  xml.Name `xml:"clientConfig"`
		Version  string   `xml:"version,attr"`
		Provider provider `xml:"emailProvider"`
	}
	user := "%EMAILADDRESS%"
	smtpUser := user
	if smtp.LocalPart {
		smtpUser = "%EMAILLOCALPART%"
	}
	if email != "" {
		user, smtpUser = email, smtp.Username(email)
	}
	if domain == "" {
		domain = "%EMAILDOMAIN%"
	}
	p := provider{ID: "imapwhy", Domain: domain, DisplayName: "imapwhy (" + domain + ")", DisplayShortName: "imapwhy"}
	for _, l := range listeners {
		p.Incoming = append(p.Incoming, server{Type: "imap", Hostname: imapHost, Port: l.Port,
			SocketType: socketType(l.TLS), Username: user, Authentication: "password-cleartext"})
	}
	p.Outgoing = []server{{Type: "smtp", Hostname: smtp.Host, Port: smtp.Port, SocketType: socketType(smtp.TLS),
		Username: smtpUser, Authentication: "password-cleartext"}}
	out, err := xml.MarshalIndent(clientConfig{Version: "1.1", Provider: p}, "", "  ")
	if err != nil {
		panic("setup: " + err.Error()) // plain structs of strings and ints
	}
	var b bytes.Buffer
	b.WriteString(xml.Header)
	b.Write(out)
	b.WriteByte('\n')
	return b.Bytes()
}

// socketType is the clientConfig name of a TLS mode.
func socketType(tls string) string {
	if tls == "starttls" {
		return "STARTTLS"
	}
	return "SSL"
}
