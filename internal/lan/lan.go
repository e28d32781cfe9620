// Package lan is imapwhy's home-network mode (serve --lan): the address
// phones reach this PC at, and the QR code that opens the set-up page.
package lan

import (
	"net"
	"net/netip"
	"slices"

	qrcode "github.com/skip2/go-qrcode"
)

// Addresses returns this host's private addresses (RFC 1918 IPv4 first,
// then IPv6 unique-local), the ones a phone on the home network reaches it
// at; none when the host is on no private network.
func Addresses() []netip.Addr {
	ifaces, err := net.Interfaces()
	if err != nil {
		return nil
	}
	var v4, v6 []netip.Addr
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
			ip := pfx.Addr().Unmap()
			switch {
			case !ip.IsPrivate():
			case ip.Is4():
				v4 = append(v4, ip)
			default:
				v6 = append(v6, ip)
			}
		}
	}
	slices.SortFunc(v4, netip.Addr.Compare)
	slices.SortFunc(v6, netip.Addr.Compare)
	return slices.Compact(append(v4, v6...))
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
