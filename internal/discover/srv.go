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
