// Command imapwhy is an IMAP proxy that tells people why their mail app
// says "password incorrect". See README.md.
package main

import (
	"fmt"
	"io"
	"os"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const usage = `imapwhy: an IMAP proxy that explains "password incorrect"

Usage:
  imapwhy serve [--config FILE]     run the proxy (no config: the built-in default)
  imapwhy demo [--lang ja|en]       offline demo: provider imitations + proxy
  imapwhy explain [--server HOST] [--user NAME] [--lang ja|en] [--json] [FILE]
                                    diagnose a server's raw error text
  imapwhy check ADDRESS [--server HOST[:PORT]] [--tls implicit|starttls] [--ca-file F]
                [--password-stdin] [--lang ja|en] [--json]
                                    test a mailbox login step by step
  imapwhy version                   print the version
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "serve":
		return runServe(args[1:], stdout, stderr)
	case "demo":
		return runDemo(args[1:], stdout, stderr)
	case "explain":
		return runExplain(args[1:], stdin, stdout, stderr)
	case "check":
		return runCheck(args[1:], stdin, stdout, stderr)
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, "imapwhy", version)
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "imapwhy: unknown command %q\n\n%s", args[0], usage)
	return 2
}
