package main

import (
	"context"

	"github.com/imapwhy/imapwhy/internal/config"
	"github.com/imapwhy/imapwhy/internal/notify"
	"github.com/imapwhy/imapwhy/proxy"
)

// daemon is the proxy composed with what tells people about the logins it
// refuses: the incident pages, notifications and notice mailbox of package
// notify, behind proxy.Options.OnRefusal. serve and demo both run one.
type daemon struct {
	proxy *proxy.Server
	reach *notify.Reach
}

// newDaemon prepares both parts; po.OnRefusal is set here. Nothing is
// bound until start.
func newDaemon(cfg config.Config, po proxy.Options, ro notify.Options) (*daemon, error) {
	reach, err := notify.New(cfg, ro)
	if err != nil {
		return nil, err
	}
	po.OnRefusal = reach.OnRefusal
	srv, err := proxy.New(cfg, po)
	if err != nil {
		reach.Shutdown(context.Background())
		return nil, err
	}
	return &daemon{proxy: srv, reach: reach}, nil
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
	d.reach.Shutdown(ctx)
	return err
}
