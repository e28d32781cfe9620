//go:build linux

package main

import (
	"flag"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// parseFlags reads the flags; -quick changes the defaults of the sizes
// not given explicitly.
func parseFlags(args []string) (options, error) {
	fs := flag.NewFlagSet("imapwhy-bench", flag.ContinueOnError)
	var o options
	quick := fs.Bool("quick", false, "small sizes: a check that everything works, in a minute or two")
	fs.StringVar(&o.Imapwhy, "imapwhy", "", "the imapwhy binary to measure (required; go build ./cmd/imapwhy)")
	fs.StringVar(&o.Baseline, "baseline", "", "another imapwhy binary (say, built before a change) to measure alongside, as path \"baseline\"")
	fs.BoolVar(&o.Shield, "shield", true, "imapwhy's shield (login history, on by default); false shows the cost of the proxy without it")
	fs.StringVar(&o.Nginx, "nginx", "/usr/sbin/nginx", "the nginx binary")
	fs.StringVar(&o.NginxModule, "nginx-mail-module", "/usr/lib/nginx/modules/ngx_mail_module.so", "nginx's mail module (Debian: libnginx-mod-mail)")
	fs.IntVar(&o.Messages, "messages", 200, "messages in the mailbox")
	fs.IntVar(&o.MessageSize, "message-size", 1<<20, "bytes per message")
	fs.IntVar(&o.Rounds, "rounds", 5, "runs of each login and round-trip measurement; the figures are medians")
	fs.IntVar(&o.BulkRounds, "bulk-rounds", 25, "runs of the bulk FETCH (each a fraction of a second); the figures are medians")
	conc := fs.String("login-clients", "1,8", "concurrent clients in the login test (comma-separated)")
	fs.DurationVar(&o.LoginTime, "login-time", 2*time.Second, "duration of one login run")
	fs.IntVar(&o.Noops, "noops", 2000, "NOOPs per round-trip run")
	sessions := fs.String("sessions", "1000,5000,10000", "idle sessions at which memory is read (comma-separated, rising)")
	fs.DurationVar(&o.Settle, "settle", minIdleSettle, "wait after the last idle session opened before reading memory (at least 3s: imapwhy parks a session after about 1s of silence)")
	only := fs.String("only", "", "run only these benchmarks: bulk,login,noop,idle")
	variants := fs.String("variants", "", "measure only these client sides: plaintext,TLS (the idle test is TLS only)")
	fs.StringVar(&o.WorkDir, "workdir", "", "keep configurations and logs here (default: a temporary directory, removed)")
	fs.BoolVar(&o.Verbose, "v", false, "verbose")
	fs.BoolVar(&o.Hold, "hold", false, "set up Dovecot, imapwhy and nginx, print their addresses and wait for ^C (for profiling by hand)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if *quick {
		quickDefaults(fs, &o, conc, sessions)
	}
	var err error
	if o.LoginConc, err = intList(*conc); err != nil {
		return o, fmt.Errorf("-login-clients: %w", err)
	}
	if o.Sessions, err = intList(*sessions); err != nil {
		return o, fmt.Errorf("-sessions: %w", err)
	}
	o.Only = map[string]bool{}
	for _, b := range strings.FieldsFunc(*only, func(r rune) bool { return r == ',' }) {
		switch b {
		case "bulk", "login", "noop", "idle":
			o.Only[b] = true
		default:
			return o, fmt.Errorf("-only: unknown benchmark %q", b)
		}
	}
	o.Variants = map[string]bool{}
	for _, v := range strings.FieldsFunc(*variants, func(r rune) bool { return r == ',' }) {
		switch v {
		case variantPlain, variantTLS:
			o.Variants[v] = true
		default:
			return o, fmt.Errorf("-variants: unknown client side %q", v)
		}
	}
	switch {
	case o.Imapwhy == "":
		return o, fmt.Errorf("-imapwhy is required: go build -o /tmp/imapwhy ./cmd/imapwhy")
	case o.Messages < 1 || o.MessageSize < 1024 || o.Rounds < 1 || o.BulkRounds < 1 || o.Noops < 1:
		return o, fmt.Errorf("-messages, -rounds, -bulk-rounds, -noops must be at least 1, -message-size at least 1024")
	case o.Settle < minIdleSettle:
		return o, fmt.Errorf("-settle must be at least %v: imapwhy parks an idle session after about a second of silence, and memory read sooner counts sessions not yet parked", minIdleSettle)
	}
	return o, nil
}

// quickDefaults applies -quick's sizes to the flags not set explicitly.
func quickDefaults(fs *flag.FlagSet, o *options, conc, sessions *string) {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	apply := func(name string, f func()) {
		if !set[name] {
			f()
		}
	}
	apply("messages", func() { o.Messages = 16 })
	apply("rounds", func() { o.Rounds = 3 })
	apply("bulk-rounds", func() { o.BulkRounds = 9 })
	apply("login-time", func() { o.LoginTime = time.Second })
	apply("noops", func() { o.Noops = 300 })
	apply("login-clients", func() { *conc = "1,8" })
	apply("sessions", func() { *sessions = "250,500,1000" })
}

// intList parses "1,8,16" into a rising list of positive numbers.
func intList(s string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q is not a positive number", f)
		}
		out = append(out, n)
	}
	if !slices.IsSorted(out) {
		return nil, fmt.Errorf("%q is not in rising order", s)
	}
	return out, nil
}
