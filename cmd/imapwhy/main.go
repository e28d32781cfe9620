// Command imapwhy is an IMAP proxy that tells people why their mail app
// says "password incorrect". See README.md.
package main

import (
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"slices"
)

// version is set at build time with -ldflags "-X main.version=..."; when it
// is not, versionLine reads the module version and commit from the build
// information Go records in every binary.
var version = ""

const usage = `imapwhy: an IMAP proxy that explains "password incorrect"

Usage:
  imapwhy serve [--config FILE]     run the proxy (no config: the built-in default)
  imapwhy demo [--lang ja|en]       offline demo: provider imitations + proxy
  imapwhy explain [--server HOST] [--user NAME] [--lang ja|en] [--json] [FILE]
                                    diagnose a server's raw error text
  imapwhy check ADDRESS [--server HOST[:PORT]] [--tls implicit|starttls] [--ca-file F]
                [--password-stdin] [--lang ja|en] [--json]
                                    test a mailbox login step by step
  imapwhy connect ADDRESS [--config FILE] [--password-stdin]
                                    connect an account to the OAuth bridge (device flow)
  imapwhy disconnect ADDRESS [--config FILE] [--password-stdin]
                                    forget an account's OAuth bridge sign-in
  imapwhy version                   print the version and commit
  imapwhy help COMMAND              the options of one command (or: imapwhy COMMAND --help)
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
	case "connect":
		return runConnect(args[1:], stdin, stdout, stderr)
	case "disconnect":
		return runDisconnect(args[1:], stdin, stdout, stderr)
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, versionLine())
		return 0
	case "help", "-h", "--help":
		// help, version and help itself have no options of their own:
		// the general usage says all there is.
		if len(args) > 1 && args[0] == "help" && !slices.Contains([]string{"help", "-h", "--help", "version"}, args[1]) {
			if commands[args[1]] {
				return run([]string{args[1], "--help"}, stdin, stdout, stderr)
			}
			fmt.Fprintf(stderr, "imapwhy help: unknown command %q\n\n%s", args[1], usage)
			return 2
		}
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "imapwhy: unknown command %q\n\n%s", args[0], usage)
	return 2
}

// commands are the subcommands with their own options.
var commands = map[string]bool{"serve": true, "demo": true, "explain": true, "check": true, "connect": true, "disconnect": true}

// versionLine is "imapwhy VERSION (commit C, go GOVERSION)": the version
// set at build time, else the module version from the build information
// ("(devel)" for a build from a checkout), and the VCS commit when the
// binary was built from a git checkout ("+dirty" with local changes).
func versionLine() string {
	info, ok := debug.ReadBuildInfo()
	return versionFrom(version, info, ok)
}

func versionFrom(v string, info *debug.BuildInfo, ok bool) string {
	if !ok {
		if v == "" {
			v = "unknown"
		}
		return "imapwhy " + v
	}
	if v == "" {
		v = info.Main.Version
	}
	if v == "" {
		v = "(devel)"
	}
	var commit, dirty string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			commit = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "+dirty"
			}
		}
	}
	line := "imapwhy " + v
	if commit != "" {
		line += " (commit " + commit + dirty + ", " + info.GoVersion + ")"
	} else {
		line += " (" + info.GoVersion + ")"
	}
	return line
}
