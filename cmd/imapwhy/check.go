package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"

	"golang.org/x/term"

	"github.com/imapwhy/imapwhy/internal/check"
)

const checkUsage = `Usage: imapwhy check ADDRESS [--server HOST[:PORT]] [--tls implicit|starttls|none]
                     [--ca-file F] [--password-stdin | --oauth-token-stdin] [--lang ja|en] [--json]

Tests the way from a mail app to the mailbox step by step (finding the server,
DNS, TCP, TLS and the certificate, the greeting, CAPABILITY, STARTTLS, login,
INBOX, logout), shows each step as it runs, and says which one fails, why, and
what to do. Without --server, the server is found from the email address; with
it, ADDRESS may be any user name.

The password is asked for without echo on a terminal. With --password-stdin it
is the first line of standard input, without its line end; spaces are kept,
as a space typed around a password is one of the things check looks for. It
is never taken from the command line.

With --oauth-token-stdin, the first line of standard input is an OAuth 2.0
access token instead: the login is AUTHENTICATE XOAUTH2 (or OAUTHBEARER), and
check says what the token is for and when it expires (from a JWT's claims,
read without checking its signature), then why the server refused it. The
token is never printed.

Exit status: 0 when the login and INBOX work, 1 when a step failed, 2 for
usage errors.

Options:
`

// maxPassword bounds the password read from standard input.
const maxPassword = 1024

// checkArgs are the parsed command line.
type checkArgs struct {
	address       string
	server        string
	tls           string
	caFile        string
	lang          string
	passwordStdin bool
	tokenStdin    bool
	json          bool
}

// runCheck implements `imapwhy check`. It returns the exit status: 0 when
// the login and INBOX worked, 1 when a step failed, 2 for usage errors.
func runCheck(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	a, err := parseCheckArgs(args, stderr)
	if status, stop := parseFailed(err, "check", 2, stderr); stop {
		return status
	}
	opts := check.Options{Server: a.server, TLS: a.tls, CAFile: a.caFile, Lang: a.lang, OAuth: a.tokenStdin}
	if err := opts.Validate(); err != nil {
		fmt.Fprintf(stderr, "imapwhy check: %v\n", err)
		return 2
	}
	var password string
	if a.tokenStdin {
		password, err = readToken(stdin)
	} else {
		password, err = readCheckPassword(a.passwordStdin, stdin, stderr)
	}
	if err != nil {
		fmt.Fprintf(stderr, "imapwhy check: %v\n", err)
		return 2
	}
	var printer *check.Printer
	if !a.json {
		printer = check.NewPrinter(stdout, a.lang, isTerminal(stdout))
		printer.Begin(a.address)
		opts.Progress = printer.Step
	}
	// No signal handling here: an interrupt ends the process, which closes
	// the connection; nothing else needs cleaning up.
	report := check.Run(context.Background(), a.address, password, opts)
	if a.json {
		err = writeCheckJSON(stdout, report)
	} else {
		printer.Finish(report)
	}
	if err != nil {
		fmt.Fprintf(stderr, "imapwhy check: write output: %v\n", err)
	}
	if !report.OK {
		return 1
	}
	return 0
}

// parseCheckArgs parses flags and exactly one ADDRESS, in any order.
func parseCheckArgs(args []string, stderr io.Writer) (checkArgs, error) {
	var a checkArgs
	if err := refusePasswordFlag(args); err != nil {
		return a, err
	}
	fs := newFlagSet("imapwhy check", checkUsage, stderr)
	fs.StringVar(&a.server, "server", "", "the IMAP server `HOST[:PORT]` (default: found from ADDRESS)")
	fs.StringVar(&a.tls, "tls", "", "with --server: `implicit`, starttls or none (default: implicit; starttls for port 143)")
	fs.StringVar(&a.caFile, "ca-file", "", "PEM `FILE` of a CA to trust besides the system's")
	fs.BoolVar(&a.passwordStdin, "password-stdin", false, "read the password from the first line of standard input")
	fs.BoolVar(&a.tokenStdin, "oauth-token-stdin", false, "read an OAuth access token from the first line of standard input and log in with it")
	fs.StringVar(&a.lang, "lang", "en", "language of the diagnosis and checklist: ja or en")
	fs.BoolVar(&a.json, "json", false, "print one JSON object with every step")
	var err error
	if a.address, err = parseAddress(fs, args, "check"); err != nil {
		return a, err
	}
	if a.passwordStdin && a.tokenStdin {
		return a, errors.New("--password-stdin and --oauth-token-stdin: one secret at a time")
	}
	return a, nil
}

// maxToken bounds the token read from standard input: JWT access tokens
// run to a few kilobytes.
const maxToken = 16 << 10

// readToken reads the token: the first line of standard input, without
// the white space around it (a token has none).
func readToken(stdin io.Reader) (string, error) {
	br := bufio.NewReader(io.LimitReader(stdin, maxToken+2))
	line, err := br.ReadString('\n')
	if err != nil && err != io.EOF {
		return "", fmt.Errorf("--oauth-token-stdin: %w", err)
	}
	tok := strings.TrimSpace(line)
	switch {
	case tok == "":
		return "", errors.New("--oauth-token-stdin: no token on standard input")
	case len(tok) > maxToken:
		return "", fmt.Errorf("--oauth-token-stdin: the token is longer than %d bytes", maxToken)
	}
	return tok, nil
}

// refusePasswordFlag explains, better than "flag provided but not
// defined", why there is no --password.
func refusePasswordFlag(args []string) error {
	for _, arg := range args {
		if arg == "--" {
			return nil
		}
		name, _, _ := strings.Cut(strings.TrimLeft(arg, "-"), "=")
		if strings.HasPrefix(arg, "-") && (name == "password" || name == "p") {
			return errors.New("the password is never taken from the command line (it would be kept in the shell history and shown in the process list): type it at the prompt, or use --password-stdin")
		}
	}
	return nil
}

// readCheckPassword reads the password: the first line of stdin with
// --password-stdin, else from a prompt without echo on the terminal.
func readCheckPassword(fromStdin bool, stdin io.Reader, stderr io.Writer) (string, error) {
	if fromStdin {
		return firstLine(stdin)
	}
	f, ok := stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return "", errors.New("standard input is not a terminal, so the password cannot be asked for: use --password-stdin")
	}
	return promptPassword(int(f.Fd()), stderr)
}

// firstLine returns the first line of r without its line end ("\n" or
// "\r\n"), and nothing else removed: a space around a password is a fact to
// report, not noise. Input without any line is an error; an empty line is
// an empty password.
func firstLine(r io.Reader) (string, error) {
	br := bufio.NewReader(io.LimitReader(r, maxPassword+2)) // room for "\r\n"
	line, err := br.ReadString('\n')
	switch {
	case err == io.EOF && line == "":
		return "", errors.New("--password-stdin: standard input is empty")
	case err == io.EOF:
		// The last line without a line end: all of it is the password.
	case err != nil:
		return "", fmt.Errorf("--password-stdin: %w", err)
	}
	if strings.HasSuffix(line, "\r\n") {
		line = line[:len(line)-2]
	} else if strings.HasSuffix(line, "\n") {
		line = line[:len(line)-1]
	}
	if len(line) > maxPassword {
		return "", fmt.Errorf("--password-stdin: the first line is longer than %d bytes", maxPassword)
	}
	return line, nil
}

// promptPassword asks for the password on the terminal fd without echo.
// An interrupt while it waits puts the terminal back as it was before the
// process ends: term.ReadPassword alone would leave echo off.
func promptPassword(fd int, stderr io.Writer) (string, error) {
	state, err := term.GetState(fd)
	if err != nil {
		return "", fmt.Errorf("terminal: %w", err)
	}
	interrupt := make(chan os.Signal, 1)
	signal.Notify(interrupt, os.Interrupt)
	done := make(chan struct{})
	defer func() {
		signal.Stop(interrupt)
		close(done)
	}()
	go restoreOnInterrupt(fd, state, interrupt, done, stderr)

	fmt.Fprint(stderr, "Password: ")
	pw, err := term.ReadPassword(fd)
	fmt.Fprintln(stderr)
	if err != nil {
		return "", fmt.Errorf("reading the password: %w", err)
	}
	return string(pw), nil
}

// restoreOnInterrupt restores the terminal and exits on an interrupt, until
// done.
func restoreOnInterrupt(fd int, state *term.State, interrupt <-chan os.Signal, done <-chan struct{}, stderr io.Writer) {
	select {
	case <-interrupt:
		term.Restore(fd, state)
		fmt.Fprintln(stderr)
		os.Exit(130) // as a shell reports SIGINT
	case <-done:
	}
}

// isTerminal reports whether w is a terminal (for the spinner).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func writeCheckJSON(w io.Writer, r check.Report) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false) // help URLs carry '&'
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}
