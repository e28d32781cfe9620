package lan

import (
	"net/netip"
	"testing"

	"github.com/imapwhy/imapwhy/internal/testkit"
)

func TestQRDecodes(t *testing.T) {
	const url = "http://192.168.1.5:8480/s/AbCdEfGhIjKlMnOpQrStUv/setup"
	text, err := QR(url)
	if err != nil {
		t.Fatal(err)
	}
	if got := testkit.DecodeTerminalQR(t, text); got != url {
		t.Errorf("decoded %q, want %q", got, url)
	}
}

func TestAddressesArePrivate(t *testing.T) {
	for _, a := range Addresses() {
		if !a.IsPrivate() || a.IsLoopback() {
			t.Errorf("%s is not a private address", a)
		}
	}
}

func TestRank(t *testing.T) {
	home := rank("wlan0", netip.MustParseAddr("192.168.1.5"))
	for _, c := range []struct {
		iface, ip string
	}{
		{"docker0", "172.17.0.1"}, {"eth0", "172.20.0.3"}, {"eth0", "10.0.0.2"}, {"br-1a2b", "192.168.49.1"}, {"eth0", "fd00::2"},
	} {
		if r := rank(c.iface, netip.MustParseAddr(c.ip)); r <= home {
			t.Errorf("%s %s ranks %d, not after a home router's address (%d)", c.iface, c.ip, r, home)
		}
	}
}
