package certs

import (
	"bytes"
	"net"
	"os"
	"slices"
	"strings"
)

// systemIdentities returns "localhost", the host name (and name.local, the
// mDNS name phones on the same network can use, for a name without a dot),
// and the loopback and interface addresses. Link-local addresses are left
// out: a certificate cannot name their zone, and IPv6 ones change with
// every interface.
func systemIdentities() ([]string, []net.IP) {
	dns := []string{"localhost"}
	if h, err := os.Hostname(); err == nil {
		h = strings.ToLower(strings.TrimSuffix(h, "."))
		if validHostName(h) && h != "localhost" {
			dns = append(dns, h)
			if !strings.Contains(h, ".") {
				dns = append(dns, h+".local")
			}
		}
	}
	ips := []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	addrs, _ := net.InterfaceAddrs() // no addresses: loopback only
	for _, a := range addrs {
		var ip net.IP
		switch a := a.(type) {
		case *net.IPNet:
			ip = a.IP
		case *net.IPAddr:
			ip = a.IP
		}
		if ip == nil || ip.IsLinkLocalUnicast() || ip.IsMulticast() || ip.IsUnspecified() {
			continue
		}
		ips = append(ips, ip)
	}
	return dns, uniqueIPs(ips)
}

func uniqueIPs(ips []net.IP) []net.IP {
	var out []net.IP
	for _, ip := range ips {
		if !slices.ContainsFunc(out, ip.Equal) {
			out = append(out, ip)
		}
	}
	slices.SortFunc(out, func(a, b net.IP) int { return bytes.Compare(a.To16(), b.To16()) })
	return out
}

// identityList is the sorted list of names and addresses, to compare a
// certificate's with the host's.
func identityList(dns []string, ips []net.IP) []string {
	var l []string
	for _, d := range dns {
		l = append(l, "dns:"+strings.ToLower(d))
	}
	for _, ip := range ips {
		l = append(l, "ip:"+ip.String())
	}
	slices.Sort(l)
	return slices.Compact(l)
}

// validHostName accepts letters, digits, '-' and '.', in labels that are
// not empty: what a certificate's DNS name may hold.
func validHostName(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}

// primaryName is the name shown as the leaf's subject: the host's name if
// known.
func primaryName(dns []string) string {
	for _, d := range dns {
		if d != "localhost" {
			return d
		}
	}
	return "localhost"
}

func caName() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "imapwhy local CA"
	}
	return "imapwhy local CA " + h
}
