// Package lan is imapwhy's home-network mode (serve --lan): the address
// phones reach this PC at, and the QR code that opens the set-up page.
package lan

import (
	"net"
	"net/netip"
	"slices"
	"strings"

	qrcode "github.com/skip2/go-qrcode"
)

// Addresses returns this host's private addresses, the ones a phone on the
// home network reaches it at, most likely first: home routers' 192.168/16,
// then 10/8, then 172.16/12, then IPv6 unique-local addresses; addresses
// of container and VM bridges (docker0, br-*, virbr*, veth*) last. None
// when the host is on no private network.
func Addresses() []netip.Addr {
	ifaces, err := net.Interfaces()
	if err != nil {
		return nil
	}
	type cand struct {
		ip   netip.Addr
		rank int
	}
	var cs []cand
	for _, ifc := range ifaces {
		if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			pfx, err := netip.ParsePrefix(a.String())
			if err != nil {
				continue
			}
			if ip := pfx.Addr().Unmap(); ip.IsPrivate() {
				cs = append(cs, cand{ip, rank(ifc.Name, ip)})
			}
		}
	}
	slices.SortStableFunc(cs, func(a, b cand) int {
		if a.rank != b.rank {
			return a.rank - b.rank
		}
		return a.ip.Compare(b.ip)
	})
	var out []netip.Addr
	for _, c := range cs {
		if !slices.Contains(out, c.ip) {
			out = append(out, c.ip)
		}
	}
	return out
}

var homeRanges = []netip.Prefix{
	netip.MustParsePrefix("192.168.0.0/16"),
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("172.16.0.0/12"),
}

// rank orders candidate addresses: lower is likelier the home network.
func rank(iface string, ip netip.Addr) int {
	r := len(homeRanges)
	for i, p := range homeRanges {
		if p.Contains(ip) {
			r = i
		}
	}
	for _, virtual := range []string{"docker", "br-", "virbr", "veth", "vmnet", "vboxnet", "cni", "flannel", "tailscale", "utun"} {
		if strings.HasPrefix(iface, virtual) {
			r += 10
		}
	}
	return r
}

// QR renders text as a QR code for a terminal, two modules per character
// with half blocks: light modules are drawn (blocks), dark ones left as the
// terminal's dark background, with the quiet zone around it.
func QR(text string) (string, error) {
	q, err := qrcode.New(text, qrcode.Medium)
	if err != nil {
		return "", err
	}
	return q.ToSmallString(false), nil
}
