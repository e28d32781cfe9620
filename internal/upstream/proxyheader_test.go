package upstream

import (
	"bufio"
	"net"
	"testing"

	"github.com/pires/go-proxyproto"

	"github.com/imapwhy/imapwhy/internal/testkit"
)

// TestDialWithProxyHeader: the upstream gets a v2 header naming the client
// before anything else.
func TestDialWithProxyHeader(t *testing.T) {
	got := make(chan *proxyproto.Header, 1)
	addr := testkit.ServeLoopback(t, func(c net.Conn) {
		h, _ := proxyproto.Read(bufio.NewReader(c))
		got <- h
	})
	client := &net.TCPAddr{IP: net.ParseIP("192.0.2.44"), Port: 5555}
	c, err := proxyHeaderDial(nil, client)(t.Context(), "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	h := <-got
	if h == nil || h.Version != 2 {
		t.Fatalf("header %+v", h)
	}
	if src, dst, _ := h.TCPAddrs(); src.String() != client.String() || dst.String() != addr {
		t.Errorf("header %v -> %v, want %v -> %v", src, dst, client, addr)
	}
}
