package main

import (
	"errors"
	"flag"
)

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
