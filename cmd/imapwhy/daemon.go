package main

import (
	"context"
	"net/http"

	"github.com/imapwhy/imapwhy/diagnose"
	"github.com/imapwhy/imapwhy/internal/bridge"

	"github.com/imapwhy/imapwhy/internal/config"
	"github.com/imapwhy/imapwhy/internal/notify"
	"github.com/imapwhy/imapwhy/internal/setup"
	"github.com/imapwhy/imapwhy/proxy"
)

// daemon is the proxy composed with what tells people about the logins it
// refuses: the incident pages, notifications and notice mailbox of package
// notify, behind proxy.Options.OnRefusal. serve and demo both run one.
type daemon struct {
	proxy *proxy.Server
	reach *notify.Reach
	setup *setupPages // nil: no set-up page (demo)
}

// newDaemon prepares both parts; po.OnRefusal is set here. Nothing is
// bound until start.
func newDaemon(cfg config.Config, po proxy.Options, ro notify.Options, su *setupPages) (*daemon, error) {
	allow := cfg.ClientAllowed()
	ro.ClientAllowed, po.ClientAllowed = allow, allow
	pages := http.NewServeMux()
	if su != nil && su.handler != nil {
		for _, p := range setup.Paths {
			pages.Handle(p, su.handler)
		}
		ro.Paths = append(ro.Paths, setup.Paths...)
	}
	if po.Bridge != nil {
		// The OAuth bridge's /connect pages.
		h := po.Bridge.Handler()
		for _, p := range bridge.Paths {
			pages.Handle(p, h)
		}
		ro.Paths = append(ro.Paths, bridge.Paths...)
	}
	if len(ro.Paths) > 0 {
		ro.Pages = pages
	}
	reach, err := notify.New(cfg, ro)
	if err != nil {
		return nil, err
	}
	po.OnRefusal, po.OnLogin, po.OnUntrusted = reach.OnRefusal, reach.OnLogin, reach.OnUntrusted
	if po.Bridge != nil {
		po.OnRefusal = connectLink(po.Bridge, po.OnRefusal)
	}
	if su != nil {
		// The set-up page's live view hears of every outcome too.
		po.OnRefusal, po.OnLogin, po.OnUntrusted = su.onRefusal(po.OnRefusal), su.onLogin(po.OnLogin), su.onUntrusted(po.OnUntrusted)
	}
	srv, err := proxy.New(cfg, po)
	if err != nil {
		reach.Shutdown(context.Background())
		return nil, err
	}
	return &daemon{proxy: srv, reach: reach, setup: su}, nil
}

// start starts the proxy, then the pages and the webhook; on error nothing
// is left running.
func (d *daemon) start() error {
	if err := d.proxy.Start(); err != nil {
		d.reach.Shutdown(context.Background())
		return err
	}
	if err := d.reach.Start(); err != nil {
		d.proxy.Shutdown(context.Background())
		d.reach.Shutdown(context.Background())
		return err
	}
	return nil
}

// reload applies cfg to the proxy, then to the web and notify settings
// (notify.Reach.Reload logs those that need a restart). proxyErr: the
// proxy refused cfg and nothing changed.
func (d *daemon) reload(cfg config.Config) (proxyErr, notifyErr error) {
	if err := d.proxy.Reload(cfg); err != nil {
		return err, nil
	}
	return nil, d.reach.Reload(cfg)
}

// shutdown drains the proxy until ctx ends, then stops the pages (which
// stay up during the drain) and flushes the notifications.
func (d *daemon) shutdown(ctx context.Context) error {
	err := d.proxy.Shutdown(ctx)
	if d.setup != nil {
		d.setup.events.Close() // the live views end: their streams never go idle
	}
	d.reach.Shutdown(ctx)
	return err
}

// connectLink points a refusal the OAuth bridge can fix to its /connect
// page: the bridge's stored sign-in has ended (oauth.reconnect_required),
// or a password login was refused because the provider wants OAuth and
// the bridge serves this account. The incident page and the notice mailbox
// get the link in the message, the ALERT ends with it.
func connectLink(b *bridge.Bridge, next func(context.Context, proxy.Refusal) proxy.Answer) func(context.Context, proxy.Refusal) proxy.Answer {
	return func(ctx context.Context, rf proxy.Refusal) proxy.Answer {
		c := rf.Diagnosis.Cause
		_, served := b.Configured(rf.User)
		link := b.ConnectURL(rf.User)
		if link == "" || !served || (c != diagnose.CauseOAuthReconnectRequired && c != diagnose.CauseProviderOAuthRequired) {
			return next(ctx, rf)
		}
		inner := rf
		if rf.Lang == "ja" {
			link += "&lang=ja"
			inner.Message += " 接続ページ: " + link
		} else {
			inner.Message += " Connect the account here: " + link
		}
		ans := next(ctx, inner)
		ans.Link = link
		return ans
	}
}
