// The DNS sources: SRV records (RFC 6186), then the MX records of domains
// hosted by a provider known by its mail exchangers.

package discover

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"

	"github.com/imapwhy/imapwhy/internal/config"
)

// srvServices are the RFC 6186 section 3.2 services for IMAP, in the order
// the RFC asks clients to prefer them: implicit TLS first.
var srvServices = []struct {
	service string
	tls     string
}{
	{"imaps", config.TLSImplicit},
	{"imap", config.TLSStartTLS},
}

var errNotOffered = errors.New(`not offered (target ".")`)

// srvLookup returns the best server from _imaps._tcp, else _imap._tcp.
// For _imap the TLS mode is STARTTLS: RFC 6186 section 3.2 leaves plaintext
// possible there, but RFC 8314 section 5 and this proxy's rules do not.
func (d *Discoverer) srvLookup(ctx context.Context, domain string) (Result, error) {
	var errs []error
	for _, s := range srvServices {
		r, err := d.srvService(ctx, s.service, s.tls, domain)
		if err == nil {
			return r, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return Result{}, errors.Join(errs...)
}

func (d *Discoverer) srvService(ctx context.Context, service, tls, domain string) (Result, error) {
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	name := "_" + service + "._tcp." + domain
	_, recs, err := d.resolver.LookupSRV(ctx, service, "tcp", domain+".")
	if err != nil {
		return Result{}, fmt.Errorf("SRV %s: %w", name, err)
	}
	for _, rec := range orderSRV(recs, d.randIntN) {
		target := strings.ToLower(strings.TrimSuffix(rec.Target, "."))
		// RFC 2782: a target of "." means the service is decidedly not
		// available at this domain. Records with port 0 or a malformed
		// name are skipped the same way.
		if target == "" || rec.Port == 0 || !validHostname(target) {
			continue
		}
		return Result{
			Host: target, Port: int(rec.Port), TLS: tls,
			Source: SourceSRV, Detail: "SRV " + name,
		}, nil
	}
	return Result{}, fmt.Errorf("SRV %s: %w", name, errNotOffered)
}

// orderSRV returns the records in the order RFC 2782 asks clients to try
// them: by priority, lowest first, and within one priority by a random
// choice weighted by Weight (zero-weight records last, as Go's resolver
// does). intn(n) returns a number in [0, n). The input is not modified.
func orderSRV(recs []*net.SRV, intn func(int) int) []*net.SRV {
	out := slices.Clone(recs)
	slices.SortStableFunc(out, func(a, b *net.SRV) int { return cmp.Compare(a.Priority, b.Priority) })
	for start := 0; start < len(out); {
		end := start + 1
		for end < len(out) && out[end].Priority == out[start].Priority {
			end++
		}
		shuffleByWeight(out[start:end], intn)
		start = end
	}
	return out
}

// shuffleByWeight puts the records of one priority in weighted random
// order: each position is filled by a record chosen with probability
// proportional to its weight among those left.
func shuffleByWeight(recs []*net.SRV, intn func(int) int) {
	sum := 0
	for _, r := range recs {
		sum += int(r.Weight)
	}
	for sum > 0 && len(recs) > 1 {
		n, s := intn(sum), 0
		for i := range recs {
			s += int(recs[i].Weight)
			if s > n {
				recs[0], recs[i] = recs[i], recs[0]
				break
			}
		}
		sum -= int(recs[0].Weight)
		recs = recs[1:]
	}
}

// MXRule maps mail exchangers to a provider's IMAP server: a domain whose
// MX host ends in Suffix (on a label boundary) is hosted by that provider,
// as a domain on Google Workspace or Microsoft 365 shows in its MX records.
type MXRule struct {
	Suffix   string // MX host suffix, lower case, no trailing dot ("google.com")
	Provider string // provider ID
	Host     string
	Port     int
	TLS      string // config.TLSImplicit | TLSStartTLS
	Username string // template with %EMAILADDRESS%...; "" when the login name is not derived from the address
	Evidence string // where the MX names and the IMAP server are documented
}

// mxRules is the built-in table. It is deliberately small: a wrong guess
// sends the user's password to the wrong provider, so only providers whose
// MX names are unambiguous and documented are listed.
var mxRules = []MXRule{
	gmailIMAP.forMX("google.com",
		"Google Workspace MX: smtp.google.com (since 2023) or aspmx.l.google.com and alt1-4.aspmx.l.google.com "+
			"(Google Workspace admin help, 'Set up MX records'); Thunderbird ISPDB googlemail.com.xml lists google.com as an MX domain"),
	gmailIMAP.forMX("googlemail.com",
		"legacy Google Workspace MX aspmx2-5.googlemail.com; Thunderbird ISPDB googlemail.com.xml"),
	microsoftIMAP.forMX("mail.protection.outlook.com",
		"Exchange Online MX <domain-tld>.mail.protection.outlook.com (Microsoft 365 admin DNS records); "+
			"Thunderbird ISPDB office365.com maps this MX to outlook.office365.com:993 SSL"),
	microsoftIMAP.forMX("mx.microsoft",
		"Exchange Online MX for DNSSEC/DANE-enabled domains, <domain-tld>.<id>.mx.microsoft, since 2024 "+
			"(Microsoft Exchange team announcement, reported by third parties; not read first-hand)"),
	mxServer("icloud", "imap.mail.me.com", "").forMX("mail.icloud.com",
		"iCloud+ Custom Email Domain MX mx01.mail.icloud.com and mx02.mail.icloud.com (as published in many zones; "+
			"Apple support HT212514 not read first-hand); IMAP imap.mail.me.com:993 SSL (Thunderbird ISPDB me.com.xml). "+
			"The login is the Apple Account's iCloud address, not the custom one, so the user name is unknown"),
	mxServer("yahoo", "imap.mail.yahoo.com", placeholderAddress).forMX("yahoodns.net",
		"Thunderbird ISPDB yahoo.com.xml lists yahoodns.net as an MX domain and notes that AOL uses it too "+
			"(aol.com and its siblings are answered by the built-in catalog before MX is tried)"),
	mxServer("zoho", "imappro.zoho.com", placeholderAddress).forMX("zoho.com",
		"Zoho Mail MX mx.zoho.com, mx2.zoho.com, mx3.zoho.com; Zoho's IMAP help: organization users with a "+
			"domain-based address use imappro.zoho.com:993 SSL (personal zoho.com accounts use imap.zoho.com, from the catalog)"),
	mxServer("fastmail", "imap.fastmail.com", placeholderAddress).forMX("messagingengine.com",
		"Fastmail custom-domain MX in1-smtp.messagingengine.com and in2-smtp.messagingengine.com; "+
			"Thunderbird ISPDB messagingengine.com.xml maps it to imap.fastmail.com:993 SSL"),
}

// mxServer is a provider's IMAP server as the built-in MX rules point to
// it: implicit TLS on port 993, as every provider they list takes it.
func mxServer(provider, host, username string) MXRule {
	return MXRule{Provider: provider, Host: host, Port: 993, TLS: config.TLSImplicit, Username: username}
}

// The servers more than one MX suffix points to.
var (
	gmailIMAP     = mxServer("gmail", "imap.gmail.com", placeholderAddress)
	microsoftIMAP = mxServer("microsoft365", "outlook.office365.com", placeholderAddress)
)

// forMX returns the rule that sends domains whose MX host is under suffix
// to r's server, with the evidence for it.
func (r MXRule) forMX(suffix, evidence string) MXRule {
	r.Suffix, r.Evidence = suffix, evidence
	return r
}

// DefaultMXRules returns a copy of the built-in MX table.
func DefaultMXRules() []MXRule { return slices.Clone(mxRules) }

// match reports whether the MX host (lower case, no trailing dot) is under
// the rule's suffix: "aspmx.l.google.com" matches "google.com",
// "evilgoogle.com" does not.
func (r MXRule) match(host string) bool {
	return host == r.Suffix || strings.HasSuffix(host, "."+r.Suffix)
}

// mxLookup finds the domain's MX hosts and returns the rule matching the most
// preferred one that any rule knows.
func (d *Discoverer) mxLookup(ctx context.Context, domain string) (Result, error) {
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	mxs, err := d.resolver.LookupMX(ctx, domain+".")
	if err != nil {
		return Result{}, fmt.Errorf("MX %s: %w", domain, err)
	}
	slices.SortStableFunc(mxs, func(a, b *net.MX) int { return cmp.Compare(a.Pref, b.Pref) })
	for _, mx := range mxs {
		host := strings.ToLower(strings.TrimSuffix(mx.Host, "."))
		if host == "" {
			continue // RFC 7505 null MX: the domain takes no mail
		}
		for _, rule := range d.mxRules {
			if rule.match(host) {
				return Result{
					Host: rule.Host, Port: rule.Port, TLS: rule.TLS, Username: rule.Username,
					Source: SourceMX, Provider: rule.Provider, Detail: "MX " + host,
				}, nil
			}
		}
	}
	return Result{}, fmt.Errorf("MX %s: %w", domain, errNoKnownMX)
}

var errNoKnownMX = errors.New("no MX host of a known provider")
