// Package discover finds the IMAP server for an email address, and guards
// every connection made to what it finds.
//
// Sources, in order, each answer labelled with where it came from
// (Result.Source):
//
//  1. the built-in provider catalog (Options.Catalog, no network);
//  2. the domain's autoconfig file in Thunderbird's clientConfig format,
//     https://autoconfig.<domain>/mail/config-v1.1.xml then
//     https://<domain>/.well-known/autoconfig/mail/config-v1.1.xml;
//  3. DNS SRV records per RFC 6186: _imaps._tcp.<domain> (implicit TLS),
//     then _imap._tcp.<domain> (STARTTLS);
//  4. the domain's MX records, for providers recognisable by their mail
//     exchangers (a domain on Google Workspace or Microsoft 365).
//
// Network outcomes are cached per domain with a TTL, found or not.
//
// Everything discovered comes from DNS and web servers that anyone can
// set up, so nothing is dialled before a Guard has resolved it and refused
// loopback, private, link-local and other non-public addresses (unless the
// operator allows them); the Guard then dials the addresses it vetted, not
// the name again, which defeats DNS rebinding. Autoconfig fetches go
// through it, and the proxy dials discovered upstreams through it too:
//
//	d := discover.New(discover.Options{Catalog: catalogLookup})
//	r, err := d.Lookup(ctx, "alice@example.com")
//	switch {
//	case errors.Is(err, discover.ErrNotAnAddress): // ask for the whole address
//	case errors.Is(err, discover.ErrNotFound): // no server known for the domain
//	case err != nil: // refused by policy, or ctx ended
//	}
//	conn, err := d.Guard().DialContext(ctx, "tcp", net.JoinHostPort(r.Host, strconv.Itoa(r.Port)))
package discover
