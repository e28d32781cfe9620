package incident

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

// Bounds of one HTTP connection: the pages are small, and nothing here
// needs a long-lived request.
const (
	webReadHeaderTimeout = 10 * time.Second
	webReadTimeout       = 20 * time.Second
	webWriteTimeout      = 30 * time.Second
	webIdleTimeout       = 2 * time.Minute
	webMaxHeaderBytes    = 16 << 10
)

// Server serves a handler over HTTPS on one address.
type Server struct {
	http *http.Server
	ln   net.Listener
	done chan struct{}

	started atomic.Bool
}

// Listen binds addr (host:port) for h with the proxy's TLS configuration
// (certs.Manager.TLSConfig(): the same certificate as the IMAP listeners).
// Serving starts with Start.
func Listen(addr string, h http.Handler, tlsConf *tls.Config, log zerolog.Logger) (*Server, error) {
	if tlsConf == nil {
		return nil, errors.New("incident: the web pages need the proxy's certificate")
	}
	conf := tlsConf.Clone()
	conf.NextProtos = []string{"h2", "http/1.1"}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("incident: %w", err)
	}
	s := &Server{
		ln:   ln,
		done: make(chan struct{}),
		http: &http.Server{
			Handler:           h,
			TLSConfig:         conf,
			ReadHeaderTimeout: webReadHeaderTimeout,
			ReadTimeout:       webReadTimeout,
			WriteTimeout:      webWriteTimeout,
			IdleTimeout:       webIdleTimeout,
			MaxHeaderBytes:    webMaxHeaderBytes,
			ErrorLog:          newErrorLog(log),
		},
	}
	return s, nil
}

// Addr is the bound address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Start serves in a goroutine until Shutdown.
func (s *Server) Start() {
	if s.started.Swap(true) {
		return
	}
	go func() {
		defer close(s.done)
		s.http.ServeTLS(s.ln, "", "")
	}()
}

// Shutdown stops accepting, lets requests in flight finish until ctx ends,
// then closes what is left and waits for the serving goroutine.
func (s *Server) Shutdown(ctx context.Context) error {
	if !s.started.Load() {
		return s.ln.Close()
	}
	err := s.http.Shutdown(ctx)
	if err != nil {
		s.http.Close()
	}
	<-s.done
	return err
}

// newErrorLog sends net/http's own messages (mostly failed TLS handshakes
// from browsers that do not trust the certificate yet) to the debug log.
func newErrorLog(l zerolog.Logger) *log.Logger {
	return log.New(errorLogWriter{l}, "", 0)
}

type errorLogWriter struct{ l zerolog.Logger }

func (w errorLogWriter) Write(p []byte) (int, error) {
	w.l.Debug().Str("event", "web_error").Msg(strings.TrimSpace(string(p)))
	return len(p), nil
}
