package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/rs/zerolog"

	"github.com/imapwhy/imapwhy/internal/bridge"
	"github.com/imapwhy/imapwhy/internal/config"
	"github.com/imapwhy/imapwhy/internal/notify"
)

const connectUsage = `Usage: imapwhy connect ADDRESS [--config FILE] [--password-stdin]

Connects a mail account to imapwhy's OAuth bridge from a terminal (the
device authorization grant, RFC 8628): imapwhy shows a web address and a
code; open the address on any device, enter the code and sign in with the
provider. imapwhy then keeps the account's sign-in, locked with an app
password, and prints that password once: type it in the mail app.

With --password-stdin, the first line of standard input is the app password
to use instead of a generated one (at least 12 characters).

The account's domain or address must be in oauth_bridge of the
configuration. Exit status: 0 connected, 1 failed, 2 usage errors.

Options:
`

const disconnectUsage = `Usage: imapwhy disconnect ADDRESS [--config FILE] [--password-stdin]

Forgets the account's sign-in kept by the OAuth bridge. With
--password-stdin (the app password on standard input) the refresh token is
also revoked at the provider, when the provider offers revocation.

Options:
`

// openBridge builds the OAuth bridge of cfg, its grants in
// state_dir/oauth-bridge; nil when no provider is configured.
func openBridge(cfg config.Config, log zerolog.Logger) (*bridge.Bridge, error) {
	if !cfg.OAuthBridge.Enabled() {
		return nil, nil
	}
	store, err := bridge.NewFileStore(filepath.Join(cfg.StateDir, "oauth-bridge"))
	if err != nil {
		return nil, fmt.Errorf("oauth_bridge: %w", err)
	}
	return bridge.New(cfg.OAuthBridge, bridge.Options{Store: store, PublicURL: notify.PublicURL(cfg), Logger: log})
}

type connectArgs struct {
	address, config string
	passwordStdin   bool
}

func parseConnectArgs(name, usage string, args []string, stderr io.Writer) (connectArgs, error) {
	var a connectArgs
	if err := refusePasswordFlag(args); err != nil {
		return a, err
	}
	fs := newFlagSet(name, usage, stderr)
	fs.StringVar(&a.config, "config", "", "configuration file (with oauth_bridge)")
	fs.BoolVar(&a.passwordStdin, "password-stdin", false, "read the app password from the first line of standard input")
	var err error
	a.address, err = parseAddress(fs, args, name)
	return a, err
}

// bridgeCommand parses the arguments of `imapwhy name` and opens the
// bridge of its configuration; when ok is false, the command ends with
// status (its error already printed).
func bridgeCommand(name, usage string, args []string, stderr io.Writer) (a connectArgs, b *bridge.Bridge, status int, ok bool) {
	a, err := parseConnectArgs(name, usage, args, stderr)
	if status, stop := parseFailed(err, name, 2, stderr); stop {
		return a, nil, status, false
	}
	if b, ok = bridgeFor(name, a, stderr); !ok {
		return a, nil, 2, false
	}
	return a, b, 0, true
}

func bridgeFor(name string, a connectArgs, stderr io.Writer) (*bridge.Bridge, bool) {
	cfg, err := loadConfig(a.config)
	if err == nil && !cfg.OAuthBridge.Enabled() {
		err = errors.New("no oauth_bridge providers in the configuration (see the README: the OAuth bridge)")
	}
	var b *bridge.Bridge
	if err == nil {
		b, err = openBridge(cfg, zerolog.Nop())
	}
	if err != nil {
		fmt.Fprintf(stderr, "imapwhy %s: %v\n", name, err)
		return nil, false
	}
	return b, true
}

// runConnect implements `imapwhy connect`.
func runConnect(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	a, b, status, ok := bridgeCommand("connect", connectUsage, args, stderr)
	if !ok {
		return status
	}
	if _, ok := b.Configured(a.address); !ok {
		fmt.Fprintf(stderr, "imapwhy connect: %s is not in oauth_bridge (domains, users)\n", a.address)
		return 2
	}
	var own string
	if a.passwordStdin {
		var err error
		if own, err = firstLine(stdin); err == nil {
			if why := bridge.CheckOwnPassword(own); why != "" {
				err = errors.New("app password: " + why)
			}
		}
		if err != nil {
			fmt.Fprintf(stderr, "imapwhy connect: %v\n", err)
			return 2
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	pw, err := b.ConnectDevice(ctx, a.address, own, func(d bridge.Device) {
		fmt.Fprintf(stdout, "To connect %s, open\n\n    %s\n\nand enter the code\n\n    %s\n\nthen sign in. Waiting for the approval...\n", a.address, d.VerificationURI, d.UserCode)
		if d.VerificationURIComplete != "" {
			fmt.Fprintf(stdout, "(or open %s)\n", d.VerificationURIComplete)
		}
	})
	if err != nil {
		fmt.Fprintf(stderr, "imapwhy connect: %v\n", err)
		return 1
	}
	if own != "" {
		fmt.Fprintf(stdout, "\nConnected. Your mail app keeps using the password you chose.\n")
		return 0
	}
	fmt.Fprintf(stdout, "\nConnected. In your mail app, use this password for %s (shown only this once):\n\n    %s\n\n", a.address, pw)
	return 0
}

// runDisconnect implements `imapwhy disconnect`.
func runDisconnect(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	a, b, status, ok := bridgeCommand("disconnect", disconnectUsage, args, stderr)
	if !ok {
		return status
	}
	var pw string
	if a.passwordStdin {
		var err error
		if pw, err = firstLine(stdin); err != nil {
			fmt.Fprintf(stderr, "imapwhy disconnect: %v\n", err)
			return 2
		}
	}
	if err := b.Disconnect(context.Background(), a.address, pw); err != nil {
		if errors.Is(err, bridge.ErrNotConnected) {
			fmt.Fprintf(stderr, "imapwhy disconnect: %s is not connected\n", a.address)
		} else {
			fmt.Fprintf(stderr, "imapwhy disconnect: %v\n", err)
		}
		return 1
	}
	fmt.Fprintf(stdout, "imapwhy has forgotten the sign-in of %s.\n", a.address)
	return 0
}
