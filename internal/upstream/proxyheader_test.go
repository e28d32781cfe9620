package upstream

import (
	"bufio"
	"net"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"
)

// TestDialWithProxyHeader: the upstream gets a v2 header naming the client
// before anything else.
func TestDialWithProxyHeader(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan *proxyproto.Header, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- nil
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		h, _ := proxyproto.Read(bufio.NewReader(c))
		got <- h
	}()
	client := &net.TCPAddr{IP: net.ParseIP("192.0.2.44"), Port: 5555}
	c, err := proxyHeaderDial(nil, client)(t.Context(), "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	h := <-got
	if h == nil || h.Version != 2 {
		t.Fatalf("header %+v", h)
	}
	if src, dst, _ := h.TCPAddrs(); src.String() != client.String() || dst.String() != ln.Addr().String() {
		t.Errorf("header %v -> %v, want %v -> %v", src, dst, client, ln.Addr())
	}
}
