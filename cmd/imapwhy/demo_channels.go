package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"regexp"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/imapwhy/imapwhy/internal/config"
	"github.com/imapwhy/imapwhy/internal/imitate"
	"github.com/imapwhy/imapwhy/internal/memlog"
	"github.com/imapwhy/imapwhy/internal/notify"
	"github.com/imapwhy/imapwhy/internal/shield"
	"github.com/imapwhy/imapwhy/proxy"
)

// demoChannels is a second proxy in front of the first imitation showing
// the ways imapwhy reaches people whose mail app hides the server's
// words: the incident page linked from the NO, the status page, the shield
// holding back a password that keeps failing, and the notice mailbox.
type demoChannels struct {
	daemon *daemon
	shield *shield.Shield
	plain  string // listener without the notice mailbox
	notice string // listener with it
	web    string // the pages
	events *demoEvents
}

// demoEvents keeps the channels proxy's log events (JSON lines), to tell
// which answers the shield gave without asking the provider.
type demoEvents struct {
	memlog.Buffer
}

// heldSince reports whether a login was held back after offset, and the
// new offset.
func (e *demoEvents) heldSince(off int) (bool, int) {
	s := e.String()
	return strings.Contains(s[off:], `"held":true`), len(s)
}

// demoShieldTries is how many times the channels' shield forwards one
// failing password before answering from history.
const demoShieldTries = 2

func (d *demo) startChannels(ctx context.Context, host string) error {
	if len(d.imitations) == 0 {
		return nil
	}
	events := &demoEvents{}
	log := zerolog.New(events).Level(zerolog.InfoLevel)
	cfg := config.Default()
	cfg.StateDir = d.stateDir
	cfg.Limits.FailureDelayBase = config.Duration(time.Millisecond)
	cfg.Limits.FailureDelayMax = config.Duration(time.Millisecond)
	cfg.Limits.PerAddressLoginsPerMinute = config.Unlimited
	cfg.Limits.PerUserLoginsPerMinute = config.Unlimited
	cfg.Shield.ForwardedTries = demoShieldTries
	cfg.Web.Address = net.JoinHostPort(host, "0")
	up := config.Upstream{Address: d.imitations[0].Addr(), TLS: config.TLSImplicit, ServerName: d.providers[0].Host}
	cfg.Listeners = []config.Listener{
		{Address: net.JoinHostPort(host, "0"), TLS: config.TLSImplicit, Language: d.lang, Upstream: up},
		{Address: net.JoinHostPort(host, "0"), TLS: config.TLSImplicit, Language: d.lang, Upstream: up, NoticeMailbox: true},
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	sh, err := shield.Open(cfg.Shield, cfg.StateDir, shield.Options{})
	if err != nil {
		return err
	}
	p, err := newDaemon(cfg, proxy.Options{Logger: log, TLS: d.certs.TLSConfig(), UpstreamRoots: d.upstreamRoots, Shield: sh},
		notify.Options{Logger: log, TLS: d.certs.TLSConfig()}, nil)
	if err != nil {
		sh.Close()
		return err
	}
	if err := p.start(); err != nil {
		sh.Close()
		return err
	}
	addrs := p.proxy.Addrs()
	d.channels = &demoChannels{daemon: p, shield: sh, plain: demoDialAddr(addrs[0]), notice: demoDialAddr(addrs[1]),
		web: demoDialAddr(p.reach.WebAddr()), events: events}
	return nil
}

func (c *demoChannels) close() {
	if c == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), demoDrainTimeout)
	c.daemon.shutdown(ctx)
	cancel()
	c.shield.Close()
}

// demoScenario finds a scenario of the first provider by name.
func (d *demo) demoScenario(name string) (imitate.Scenario, bool) {
	for _, s := range d.providers[0].Scenarios {
		if s.Name == name {
			return s, true
		}
	}
	return imitate.Scenario{}, false
}

// printChannels logs in through the channels' listeners and prints what
// each way of telling shows.
func (d *demo) printChannels(w io.Writer) {
	c := d.channels
	if c == nil {
		return
	}
	l := demoTexts[d.lang]
	fmt.Fprintf(w, "\n== %s\n", l.channels)
	fmt.Fprintf(w, "   %s https://%s/\n", l.statusPage, c.web)

	if s, ok := d.demoScenario("invalid-credentials"); ok {
		fmt.Fprintf(w, "\n-- incident-page: %s (imaps://%s)\n", l.incidentCase, c.plain)
		fmt.Fprintf(w, "   LOGIN %s / %q\n", s.User, s.Password)
		d.printOutcome(w, l, d.loginAt(c.plain, s))
	}
	if good, ok := d.demoScenario("app-password"); ok {
		// The device logs in once, then sends the same wrong password
		// again and again, as a phone retrying all night: past
		// demoShieldTries it is answered from history, and the provider
		// never sees it.
		fmt.Fprintf(w, "\n-- shield: %s (imaps://%s)\n", fmt.Sprintf(l.shieldCase, demoShieldTries), c.plain)
		fmt.Fprintf(w, "   LOGIN %s / %q\n", good.User, good.Password)
		d.printOutcome(w, l, d.loginAt(c.plain, good))
		bad := good
		bad.Password = "still-wrong"
		_, off := c.events.heldSince(0)
		for range demoShieldTries + 1 {
			fmt.Fprintf(w, "   LOGIN %s / %q\n", bad.User, bad.Password)
			d.printOutcome(w, l, d.loginAt(c.plain, bad))
			var held bool
			if held, off = c.events.heldSince(off); held {
				fmt.Fprintf(w, "   %s %s\n", l.pad, l.held)
			}
		}
	}
	if s, ok := d.demoScenario("app-password-required"); ok {
		// The notice mailbox opens only for the password that worked
		// last: this account password did, until the provider began to
		// want app passwords (the history the shield would have kept).
		c.shield.Begin(s.User, s.Password).Succeeded()
		fmt.Fprintf(w, "\n-- notice-mailbox: %s (imaps://%s)\n", l.noticeCase, c.notice)
		fmt.Fprintf(w, "   LOGIN %s / %q\n", s.User, s.Password)
		d.printOutcome(w, l, d.loginAt(c.notice, s))
	}
}

// printOutcome prints the "imapwhy:" line of a login, with the incident
// page on a line of its own (and only there, when the NO ends with it too).
func (d *demo) printOutcome(w io.Writer, l demoLabels, o demoOutcome) {
	if o.link != "" {
		o.text = strings.TrimSuffix(o.text, " "+o.link)
	}
	switch {
	case o.err != nil:
		fmt.Fprintf(w, "   %s %s\n", l.now, fmt.Sprintf(l.failed, o.err))
	case o.ok:
		fmt.Fprintf(w, "   %s %s\n", l.now, fmt.Sprintf(l.loggedIn, o.messages, o.subject))
	case o.code != "":
		fmt.Fprintf(w, "   %s a1 NO [%s] %s\n", l.now, o.code, o.text)
	default:
		fmt.Fprintf(w, "   %s a1 NO %s\n", l.now, o.text)
	}
	if o.link != "" {
		fmt.Fprintf(w, "   %s %s %s\n", l.pad, l.incidentLink, o.link)
	}
}

// incidentLinkRE finds an incident page link in what the proxy said (the
// ALERT carries it when the NO has no room).
var incidentLinkRE = regexp.MustCompile(`https://\S+/why/[A-Za-z0-9_-]+`)
