package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/imapwhy/imapwhy/internal/certs"
	"github.com/imapwhy/imapwhy/internal/config"
	"github.com/imapwhy/imapwhy/internal/lan"
	"github.com/imapwhy/imapwhy/internal/notify/incident"
	"github.com/imapwhy/imapwhy/internal/setup"
	"github.com/imapwhy/imapwhy/proxy"
)

// setupPages composes the set-up page with serve: its handler (mounted on
// the web server), the live view's events (fed by the proxy's hooks), and
// with --lan the plain-HTTP first-contact link.
type setupPages struct {
	handler *setup.Handler
	events  *setup.Events
	lan     bool
	host    string   // where phones reach this PC
	others  []string // this PC's other private addresses, for --host
	plain   string   // --setup-http address, "" for none
	link    *setup.Link
	plainLn net.Listener
	plainSv *http.Server
	webAddr net.Addr
	log     zerolog.Logger
}

// setupListeners are the listeners a device is set up for, with the ports
// of addrs (the bound ones) or of the configuration.
func setupListeners(cfg config.Config, addrs []net.Addr) []setup.Listener {
	var ls []setup.Listener
	for i, l := range cfg.Listeners {
		a := l.Address
		if i < len(addrs) {
			a = addrs[i].String()
		}
		_, port, err := net.SplitHostPort(a)
		p, _ := strconv.Atoi(port)
		if err != nil || l.TLS == config.TLSNone {
			continue // a plaintext listener is for this PC's own apps only
		}
		ls = append(ls, setup.Listener{Port: p, TLS: l.TLS})
	}
	return ls
}

func newSetup(cfg config.Config, cm *certs.Manager, f serveFlags, log zerolog.Logger) (*setupPages, error) {
	ls := setupListeners(cfg, nil)
	su := &setupPages{events: setup.NewEvents(nil), lan: f.lan, host: f.host, log: log}
	if su.host == "" && f.lan {
		if addrs := lan.Addresses(); len(addrs) > 0 {
			su.host = addrs[0].String()
			for _, a := range addrs[1:] {
				su.others = append(su.others, a.String())
			}
		}
	}
	if len(ls) == 0 {
		return su, nil // no TLS listener: nothing to set a phone up for
	}
	opts := setup.Options{CAFile: cm.CAFile(), CAFingerprint: cm.Fingerprint(), Listeners: ls, Events: su.events, Log: log}
	if !cfg.LocalMode() {
		opts.StatusURL = cfg.Web.PublicURL
		if opts.StatusURL == "" && cfg.TLS.ACME != nil {
			opts.IMAPHost = cfg.TLS.ACME.Domains[0]
			opts.StatusURL = "https://" + opts.IMAPHost + "/"
		}
	}
	if f.host != "" {
		opts.IMAPHost = f.host
	}
	h, err := setup.New(opts)
	if err != nil {
		return nil, err
	}
	su.handler = h
	if f.lan && f.setupHTTP != "off" && cfg.Web.Address != "" {
		su.plain = f.setupHTTP
		if su.plain == "" {
			su.plain = defaultSetupHTTP
		}
	}
	return su, nil
}

// onRefusal records a refused login for the live view, after notify
// answered it (its incident link goes along).
func (su *setupPages) onRefusal(next func(context.Context, proxy.Refusal) proxy.Answer) func(context.Context, proxy.Refusal) proxy.Answer {
	return func(ctx context.Context, rf proxy.Refusal) proxy.Answer {
		ans := next(ctx, rf)
		su.events.Publish(setup.Event{Time: rf.Time, Client: rf.Client, Kind: setup.KindRefused, User: rf.User,
			Message: rf.Message, Steps: incident.Steps(rf.Diagnosis.Cause, rf.Lang), Link: ans.Link})
		return ans
	}
}

func (su *setupPages) onLogin(next func(proxy.Login)) func(proxy.Login) {
	return func(l proxy.Login) {
		next(l)
		su.events.Publish(setup.Event{Time: l.Time, Client: l.Client, Kind: setup.KindLogin, User: l.User})
	}
}

func (su *setupPages) onUntrusted(next func(netip.Addr, string)) func(netip.Addr, string) {
	return func(client netip.Addr, alert string) {
		next(client, alert)
		su.events.Publish(setup.Event{Client: client, Kind: setup.KindUntrusted})
	}
}

// start binds the plain-HTTP link (with --lan) once the pages are up.
func (su *setupPages) start(web net.Addr, listeners []setup.Listener, allow func(netip.Addr) bool) error {
	su.webAddr = web
	if su.handler != nil {
		su.handler.SetListeners(listeners)
	}
	if web != nil && su.handler != nil {
		_, port, _ := net.SplitHostPort(web.String())
		p, _ := strconv.Atoi(port)
		su.handler.SetWebPort(p)
	}
	if su.plain == "" || su.handler == nil || web == nil {
		return nil
	}
	ln, err := net.Listen("tcp", su.plain)
	if err != nil {
		return fmt.Errorf("setup-http: %w", err)
	}
	su.link = setup.NewLink(0, nil)
	su.plainLn = ln
	su.plainSv = setup.PlainServer(su.handler.PlainHandler(su.link), allow, su.log)
	go su.plainSv.Serve(ln)
	return nil
}

func (su *setupPages) shutdown() {
	if su.plainSv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		su.plainSv.Shutdown(ctx)
	}
}

// print tells the person how to reach the set-up page: on this PC, and
// with --lan the link and QR code for a phone.
func (su *setupPages) print(w io.Writer) {
	if su.handler == nil || su.webAddr == nil {
		return
	}
	_, webPort, _ := net.SplitHostPort(su.webAddr.String())
	if !su.lan {
		host := su.host
		if host == "" {
			host = "localhost"
		}
		fmt.Fprintf(w, "imapwhy: set-up page: https://%s/setup (for a phone on your home network: imapwhy serve --lan)\n", net.JoinHostPort(host, webPort))
		return
	}
	if su.host == "" {
		fmt.Fprintf(w, "imapwhy: this PC has no private network address: give the one phones reach it at with --host\n")
		return
	}
	fmt.Fprintf(w, "imapwhy: set-up page on your home network: https://%s/setup\n", net.JoinHostPort(su.host, webPort))
	if len(su.others) > 0 {
		fmt.Fprintf(w, "imapwhy: this PC's other home-network addresses: %s (if the phone cannot reach %s, restart with --host ADDRESS)\n",
			strings.Join(su.others, ", "), su.host)
	}
	if su.link == nil {
		return
	}
	_, plainPort, _ := net.SplitHostPort(su.plainLn.Addr().String())
	url := "http://" + net.JoinHostPort(su.host, plainPort) + su.link.Path()
	qr, err := lan.QR(url)
	if err != nil {
		return
	}
	fmt.Fprintf(w, "imapwhy: scan with the phone's camera to set it up (the link works until %s):\n%s", su.link.Expires().Format("15:04"), qr)
	fmt.Fprintf(w, "imapwhy: or open %s\n", url)
	fmt.Fprintf(w, "imapwhy: the phone shows the CA fingerprint when it installs the profile: it must be the one above\n")
}
