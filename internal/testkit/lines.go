package testkit

import (
	"bufio"
	"fmt"
	"strings"
)

// ReadLine reads one line and returns it without its line end.
func ReadLine(br *bufio.Reader) (string, error) {
	l, err := br.ReadString('\n')
	if err != nil {
		return l, err
	}
	return strings.TrimRight(l, "\r\n"), nil
}

// ReadUntil reads lines up to and including the first that starts with
// prefix (a tag and a space, say).
func ReadUntil(br *bufio.Reader, prefix string) ([]string, error) {
	var lines []string
	for {
		l, err := ReadLine(br)
		if err != nil {
			return lines, fmt.Errorf("waiting for %q: %w (after %q)", prefix, err, lines)
		}
		lines = append(lines, l)
		if strings.HasPrefix(l, prefix) {
			return lines, nil
		}
	}
}
