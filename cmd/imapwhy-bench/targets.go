//go:build linux

package main

import (
	"context"
	"crypto/tls"
	"fmt"
)

// Variants: how the client reaches the proxy. The proxies always speak
// plaintext to their upstream (nginx cannot do otherwise).
const (
	variantPlain = "plaintext" // client -> proxy plaintext on loopback
	variantTLS   = "TLS"       // client -> proxy TLS; direct: Dovecot's own TLS
)

// Paths: what stands between the client and the upstream.
const (
	pathDirect   = "direct"
	pathImapwhy  = "imapwhy"
	pathBaseline = "baseline" // another imapwhy binary (-baseline), to compare a change
	pathNginx    = "nginx"
)

// target is one way to reach the same mailbox.
type target struct {
	Variant string
	Path    string
	Addr    string
	TLS     *tls.Config // nil: plaintext
	Proxy   proxyProc   // the processes doing the proxying; nil for direct
}

func (t target) String() string { return t.Variant + "/" + t.Path }

// proxyProc is a proxy whose processes' usage can be read.
type proxyProc interface {
	pids() ([]int, error)
	errorLog() string // the file it writes its errors to
}

// proxyUsage samples the target's proxy; zero for direct.
func (t target) proxyUsage() (usage, error) {
	if t.Proxy == nil {
		return usage{}, nil
	}
	pids, err := t.Proxy.pids()
	if err != nil {
		return usage{}, err
	}
	return readUsage(pids)
}

// byVariant groups targets by variant, keeping their order. Each group
// starts with its direct path, the one the others are compared with.
func byVariant(ts []target) [][]target {
	var groups [][]target
	index := map[string]int{}
	for _, t := range ts {
		i, ok := index[t.Variant]
		if !ok {
			i = len(groups)
			index[t.Variant] = i
			groups = append(groups, nil)
		}
		groups[i] = append(groups[i], t)
	}
	return groups
}

// runRounds measures every target once per round, for rounds rounds after
// one unrecorded warm-up round. The order rotates from round to round so
// that no path always runs first (or right after the same neighbour): the
// machine's load drifts, and a ratio is only fair between figures taken
// close together. The result holds one sample per round for each target,
// indexed like ts, so that samples of the same round can be compared.
func runRounds[S any](ctx context.Context, ts []target, rounds int, measure func(context.Context, target) (S, error)) ([][]S, error) {
	out := make([][]S, len(ts))
	for r := -1; r < rounds; r++ {
		for k := range ts {
			i := (k + max(r, 0)) % len(ts)
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			s, err := measure(ctx, ts[i])
			if err != nil {
				return nil, fmt.Errorf("%s: %w", ts[i], err)
			}
			if r >= 0 {
				out[i] = append(out[i], s)
			}
		}
	}
	return out, nil
}

// rowsByVariant measures the targets of each variant rounds times
// (runRounds), and makes each target's row from its samples and those of
// the variant's first target (direct) in the same rounds.
func rowsByVariant[S, R any](ctx context.Context, ts []target, rounds int, measure func(context.Context, target) (S, error), row func(t target, own, direct []S) R) ([]R, error) {
	var rows []R
	for _, vts := range byVariant(ts) {
		samples, err := runRounds(ctx, vts, rounds, measure)
		if err != nil {
			return nil, err
		}
		for i, t := range vts {
			rows = append(rows, row(t, samples[i], samples[0]))
		}
	}
	return rows, nil
}
