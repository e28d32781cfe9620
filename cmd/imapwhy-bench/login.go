//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// loginSample is one run of concurrent login cycles against one target.
type loginSample struct {
	Logins   int
	Errors   int
	PerSec   float64
	P50, P99 time.Duration // connect to the tagged OK of LOGIN
	Ready50  time.Duration // connect to the tagged OK of the first command after LOGIN
}

// loginRow is the result for one target at one concurrency.
type loginRow struct {
	Target     target
	Clients    int
	PerSec     float64 // median over rounds
	Ratio      float64 // median over rounds of PerSec over direct's in the same round
	P50, P99   time.Duration
	Added50    time.Duration // median over rounds of P50 minus direct's P50 in the same round
	Added99    time.Duration
	Ready50    time.Duration // median over rounds
	AddedReady time.Duration // median over rounds of Ready50 minus direct's
	Errors     int           // over all rounds
	TotalLogin int           // over all rounds
}

// benchLogin runs login cycles for d with each number of clients in
// concurrency, through every target, rounds times.
func benchLogin(ctx context.Context, ts []target, rounds int, concurrency []int, d time.Duration) ([]loginRow, error) {
	var rows []loginRow
	for _, vts := range byVariant(ts) {
		for _, n := range concurrency {
			samples, err := runRounds(ctx, vts, rounds, func(ctx context.Context, t target) (loginSample, error) {
				return loginLoad(ctx, t, n, d)
			})
			if err != nil {
				return nil, err
			}
			for i, t := range vts {
				rows = append(rows, loginRowOf(t, n, samples[i], samples[0]))
			}
		}
	}
	return rows, nil
}

// loginRowOf summarises a target's samples against direct's.
func loginRowOf(t target, clients int, ss, direct []loginSample) loginRow {
	row := loginRow{Target: t, Clients: clients}
	var rate, ratio, p50, p99, add50, add99, ready, addReady []float64
	for r, s := range ss {
		ready = append(ready, float64(s.Ready50))
		addReady = append(addReady, float64(s.Ready50-direct[r].Ready50))
		rate = append(rate, s.PerSec)
		ratio = append(ratio, s.PerSec/direct[r].PerSec)
		p50 = append(p50, float64(s.P50))
		p99 = append(p99, float64(s.P99))
		add50 = append(add50, float64(s.P50-direct[r].P50))
		add99 = append(add99, float64(s.P99-direct[r].P99))
		row.Errors += s.Errors
		row.TotalLogin += s.Logins
	}
	row.PerSec, row.Ratio = median(rate), median(ratio)
	row.P50, row.P99 = time.Duration(median(p50)), time.Duration(median(p99))
	row.Added50, row.Added99 = time.Duration(median(add50)), time.Duration(median(add99))
	row.Ready50, row.AddedReady = time.Duration(median(ready)), time.Duration(median(addReady))
	return row
}

// loginLoad has clients clients log in and out in a loop for d. The
// latency of one login runs from the start of the TCP connect to the
// tagged OK of LOGIN: greeting, TLS handshake (if any) and the upstream's
// authentication included. "Ready" runs on to the OK of a NOOP sent right
// after: what a mail app waits before its first real command, including
// any work the proxy does after answering the login. LOGOUT is not timed
// but is part of the cycle that PerSec counts.
func loginLoad(ctx context.Context, t target, clients int, d time.Duration) (loginSample, error) {
	var (
		mu      sync.Mutex
		lat     []time.Duration
		ready   []time.Duration
		errs    int
		lastErr error
		wg      sync.WaitGroup
	)
	start := time.Now()
	end := start.Add(d)
	for range clients {
		wg.Go(func() {
			for time.Now().Before(end) && ctx.Err() == nil {
				l, r, err := loginOnce(ctx, t)
				mu.Lock()
				if err != nil {
					errs++
					lastErr = err
				} else {
					lat = append(lat, l)
					ready = append(ready, r)
				}
				mu.Unlock()
				if err != nil {
					time.Sleep(10 * time.Millisecond) // no busy loop on a broken path
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	s := loginSample{Logins: len(lat), Errors: errs, PerSec: float64(len(lat)) / elapsed.Seconds()}
	if len(lat) == 0 {
		return s, fmt.Errorf("no login succeeded: %w", errors.Join(lastErr, ctx.Err()))
	}
	s.P50, s.P99 = percentile(lat, 50), percentile(lat, 99)
	s.Ready50 = percentile(ready, 50)
	return s, nil
}

// loginOnce connects, logs in, sends a NOOP, returns the times to the
// two tagged OKs, and logs out.
func loginOnce(ctx context.Context, t target) (toLogin, toReady time.Duration, err error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	start := time.Now()
	c, err := login(ctx, t.Addr, t.TLS, idleReadBuffer)
	if err != nil {
		return 0, 0, err
	}
	defer c.logout()
	toLogin = time.Since(start)
	if err := c.command("NOOP"); err != nil {
		return 0, 0, fmt.Errorf("NOOP after login: %w", err)
	}
	return toLogin, time.Since(start), nil
}
