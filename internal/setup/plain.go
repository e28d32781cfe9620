package setup

import (
	"log"
	"net/http"
	"net/netip"
	"time"

	"github.com/rs/zerolog"
)

// PlainServer is the plain-HTTP server of a Link's handler
// (Handler.PlainHandler): requests from addresses allow refuses (nil:
// none refused) get 403, and the connection bounds are those of the
// HTTPS pages.
func PlainServer(h http.Handler, allow func(netip.Addr) bool, l zerolog.Logger) *http.Server {
	if allow != nil {
		inner := h
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !allow(clientAddr(r)) {
				http.Error(w, "imapwhy serves its home network only", http.StatusForbidden)
				return
			}
			inner.ServeHTTP(w, r)
		})
	}
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       20 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          log.New(l, "", 0),
	}
}
