//go:build linux

package main

import (
	"bufio"
	"strings"
	"testing"
)

// TestResponseSkipsLiterals: the benchmark client reads a FETCH with its
// message literal as one response, so the bytes it counts are the
// message's and the next response starts where it should.
func TestResponseSkipsLiterals(t *testing.T) {
	c := &client{br: bufio.NewReaderSize(strings.NewReader(
		"* 1 FETCH (BODY[] {12}\r\nhello\r\nworld FLAGS ({3+}\r\nabc))\r\na1 OK done\r\n"), 64)}
	for _, want := range []string{"* 1 FETCH (BODY[] {12}", "a1 OK done"} {
		if got, err := c.response(); err != nil || got != want {
			t.Errorf("response() = %q, %v; want %q", got, err, want)
		}
	}
}
