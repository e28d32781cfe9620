//go:build linux

package main

import (
	"context"
	"time"
)

// noopSample is one series of NOOP round trips on one session.
type noopSample struct {
	P50, P99 time.Duration
}

// noopRow is the result for one target.
type noopRow struct {
	Target           target
	P50, P99         time.Duration // medians over rounds
	Added50, Added99 time.Duration // medians over rounds of the difference to direct in the same round
}

// benchNoop times n NOOPs, one after the other, on one logged-in session
// per target, rounds times.
func benchNoop(ctx context.Context, ts []target, rounds, n int) ([]noopRow, error) {
	var rows []noopRow
	for _, vts := range byVariant(ts) {
		samples, err := runRounds(ctx, vts, rounds, func(ctx context.Context, t target) (noopSample, error) {
			return noopSeries(ctx, t, n)
		})
		if err != nil {
			return nil, err
		}
		for i, t := range vts {
			var p50, p99, add50, add99 []float64
			for r, s := range samples[i] {
				d := samples[0][r]
				p50 = append(p50, float64(s.P50))
				p99 = append(p99, float64(s.P99))
				add50 = append(add50, float64(s.P50-d.P50))
				add99 = append(add99, float64(s.P99-d.P99))
			}
			rows = append(rows, noopRow{
				Target:  t,
				P50:     time.Duration(median(p50)),
				P99:     time.Duration(median(p99)),
				Added50: time.Duration(median(add50)),
				Added99: time.Duration(median(add99)),
			})
		}
	}
	return rows, nil
}

// noopSeries logs in and times n NOOP commands, each from writing the
// command to reading its tagged OK.
func noopSeries(ctx context.Context, t target, n int) (noopSample, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	c, err := login(ctx, t.Addr, t.TLS, idleReadBuffer)
	if err != nil {
		return noopSample{}, err
	}
	defer c.logout()
	lat := make([]time.Duration, n)
	for i := range lat {
		start := time.Now()
		if err := c.command("NOOP"); err != nil {
			return noopSample{}, err
		}
		lat[i] = time.Since(start)
	}
	return noopSample{P50: percentile(lat, 50), P99: percentile(lat, 99)}, nil
}
