// Command imapwhy is an IMAP proxy that tells people why their mail app
// says "password incorrect". See README.md.
package main

import (
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"slices"
	"strings"
)

// version is set at build time with -ldflags "-X main.version=..."; when it
// is not, versionLine reads the module version and commit from the build
// information Go records in every binary.
var version = ""

// commandList is every command with options of its own, in the order the
// general usage lists them: the usage shows each command's own synopsis
// (the "Usage:" lines of its --help), so the two cannot disagree.
var commandList = []struct{ name, usage, summary string }{
	{"serve", serveUsage, "run the proxy (no config: the built-in default)"},
	{"demo", demoUsage, "offline demo: provider imitations + proxy"},
	{"explain", explainUsage, "diagnose a server's raw error text"},
	{"check", checkUsage, "test a mailbox login step by step"},
	{"connect", connectUsage, "connect an account to the OAuth bridge (device flow)"},
	{"disconnect", disconnectUsage, "forget an account's OAuth bridge sign-in"},
}

// usage is the general usage, built from commandList.
var usage = generalUsage()

func generalUsage() string {
	var b strings.Builder
	b.WriteString("imapwhy: an IMAP proxy that explains \"password incorrect\"\n\nUsage:\n")
	const prefix = "Usage: "
	for _, c := range commandList {
		synopsis, _, _ := strings.Cut(c.usage, "\n\n")
		for i, l := range strings.Split(synopsis, "\n") {
			if i == 0 {
				l = strings.TrimPrefix(l, prefix)
			} else {
				// Continuation lines are aligned under "Usage: imapwhy CMD".
				l = strings.TrimPrefix(l, strings.Repeat(" ", len(prefix)))
			}
			fmt.Fprintf(&b, "  %s\n", l)
		}
		fmt.Fprintf(&b, "%36s%s\n", "", c.summary)
	}
	b.WriteString("  imapwhy version                   print the version and commit\n")
	b.WriteString("  imapwhy help COMMAND              the options of one command (or: imapwhy COMMAND --help)\n")
	return b.String()
}

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
var commands = func() map[string]bool {
	m := map[string]bool{}
	for _, c := range commandList {
		m[c.name] = true
	}
	return m
}()

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
