//go:build linux

// Command imapwhy-bench measures what imapwhy costs compared with not
// being there, and with nginx's mail proxy in its place: three paths to the
// same Dovecot and the same mailbox, in the same run, on the same machine.
//
//	go build -o /tmp/imapwhy ./cmd/imapwhy
//	go run ./cmd/imapwhy-bench -imapwhy /tmp/imapwhy [-quick]
//
// scripts/bench installs what it needs (Dovecot, nginx with the mail
// module), builds, runs it and writes docs/benchmarks.md. The figures:
// bulk FETCH throughput, logins per second and login latency, NOOP round
// trips, memory per idle session, and the proxies' CPU time per GB; see
// docs/benchmarks.md for how each is taken. Linux only: it reads /proc.
//
// The Markdown tables go to standard output, progress to standard error.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// options are the command-line settings.
type options struct {
	Imapwhy     string // the imapwhy binary
	Baseline    string // another imapwhy binary to measure alongside, or ""
	Shield      bool   // imapwhy's shield on (as shipped)
	Nginx       string
	NginxModule string
	Messages    int
	MessageSize int
	Rounds      int // of the login and NOOP measurements
	BulkRounds  int
	LoginConc   []int
	LoginTime   time.Duration
	Noops       int
	Sessions    []int
	Settle      time.Duration
	Only        map[string]bool // benchmarks to run; empty: all
	Variants    map[string]bool // client sides to measure; empty: both
	WorkDir     string
	Verbose     bool
	Hold        bool   // set up, print the addresses, wait for an interrupt
	FileLimit   uint64 // RLIMIT_NOFILE in force, set by fitFileLimit
	SessionsCut bool   // fitFileLimit lowered Sessions to fit FileLimit
}

// want reports whether benchmark name is to run.
func (o options) want(name string) bool { return len(o.Only) == 0 || o.Only[name] }

// wantVariant reports whether the client side v is to be measured.
func (o options) wantVariant(v string) bool { return len(o.Variants) == 0 || o.Variants[v] }

func main() {
	log.SetFlags(log.Ltime)
	log.SetPrefix("imapwhy-bench: ")
	if len(os.Args) > 1 && os.Args[1] == memUpstreamCommand {
		if err := memUpstreamMain(os.Args[2:]); err != nil {
			log.Fatal(err)
		}
		return
	}
	o, err := parseFlags(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o, os.Stdout); err != nil {
		log.Print(err)
		os.Exit(1)
	}
}
