package main

import (
	"context"

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
	if su != nil && su.handler != nil {
		ro.Pages, ro.Paths = su.handler, setup.Paths
	}
	reach, err := notify.New(cfg, ro)
	if err != nil {
		return nil, err
	}
	po.OnRefusal, po.OnLogin, po.OnUntrusted = reach.OnRefusal, reach.OnLogin, reach.OnUntrusted
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
