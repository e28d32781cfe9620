package lan

import (
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
