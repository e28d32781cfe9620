package upstream

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/pires/go-proxyproto"
)

// proxyHeaderDial wraps dial (nil: a net.Dialer) so that every connection
// starts with a PROXY v2 header saying that client connected (to the
// upstream's address: the proxy's own listener is not known here), for
// servers that take the client's address from it (Dovecot's haproxy = yes
// listeners).
func proxyHeaderDial(dial DialFunc, client net.Addr) DialFunc {
	if dial == nil {
		var d net.Dialer
		dial = d.DialContext
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		h := proxyproto.HeaderProxyFromAddrs(2, client, c.RemoteAddr())
		if dl, ok := ctx.Deadline(); ok {
			c.SetWriteDeadline(dl)
		}
		if _, err := h.WriteTo(c); err != nil {
			c.Close()
			return nil, fmt.Errorf("sending the PROXY header: %w", err)
		}
		c.SetWriteDeadline(time.Time{})
		return c, nil
	}
}
