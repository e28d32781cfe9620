package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
)

// newFlagSet returns the flag set of command name ("imapwhy check"): errors
// and -h go to stderr, as usage followed by the flags' defaults.
func newFlagSet(name, usage string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage)
		fs.PrintDefaults()
	}
	return fs
}

// parseInterspersed parses args with fs, allowing flags before, between
// and after the positional arguments, which it returns in order. The
// flag package has already printed a parse error and the usage when it
// returns errUsageShown; flag.ErrHelp is returned as is.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, errUsageShown
		}
		args = fs.Args()
		if len(args) == 0 {
			return positional, nil
		}
		positional = append(positional, args[0])
		args = args[1:]
	}
}

// parseAddress parses args with fs (flags before, between and after) and
// returns the one ADDRESS they must name, for `imapwhy cmd`.
func parseAddress(fs *flag.FlagSet, args []string, cmd string) (string, error) {
	rest, err := parseInterspersed(fs, args)
	if err != nil {
		return "", err
	}
	if len(rest) != 1 {
		return "", fmt.Errorf("want one ADDRESS, got %d (see imapwhy %s --help)", len(rest), cmd)
	}
	return rest[0], nil
}

// parseFailed reports whether parsing the arguments of command name ended
// the command, and with which exit status: 0 for -h, bad for a usage
// error, printed here unless the flag package already showed it.
func parseFailed(err error, name string, bad int, stderr io.Writer) (status int, stop bool) {
	switch {
	case err == nil:
		return 0, false
	case errors.Is(err, flag.ErrHelp):
		return 0, true
	case errors.Is(err, errUsageShown):
		return bad, true
	default:
		fmt.Fprintf(stderr, "imapwhy %s: %v\n", name, err)
		return bad, true
	}
}
