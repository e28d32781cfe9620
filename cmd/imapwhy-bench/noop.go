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
	return rowsByVariant(ctx, ts, rounds, func(ctx context.Context, t target) (noopSample, error) {
		return noopSeries(ctx, t, n)
	}, noopRowOf)
}

// noopRowOf makes t's row from its samples and direct's in the same rounds.
func noopRowOf(t target, own, direct []noopSample) noopRow {
	var p50, p99, add50, add99 []float64
	for r, s := range own {
		d := direct[r]
		p50 = append(p50, float64(s.P50))
		p99 = append(p99, float64(s.P99))
		add50 = append(add50, float64(s.P50-d.P50))
		add99 = append(add99, float64(s.P99-d.P99))
	}
	return noopRow{
		Target:  t,
		P50:     time.Duration(median(p50)),
		P99:     time.Duration(median(p99)),
		Added50: time.Duration(median(add50)),
		Added99: time.Duration(median(add99)),
	}
}

// noopSeries logs in and times n NOOP commands, each from writing the
// command to reading its tagged OK.
func noopSeries(ctx context.Context, t target, n int) (noopSample, error) {
	return inSession(ctx, t, 2*time.Minute, idleReadBuffer, func(c *client) (noopSample, error) {
		lat := make([]time.Duration, n)
		for i := range lat {
			start := time.Now()
			if err := c.command("NOOP"); err != nil {
				return noopSample{}, err
			}
			lat[i] = time.Since(start)
		}
		return noopSample{P50: percentile(lat, 50), P99: percentile(lat, 99)}, nil
	})
}
