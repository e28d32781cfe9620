//go:build linux

package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"math"
	"strings"
	"time"
)

// bulkSample is one FETCH of the whole mailbox.
type bulkSample struct {
	Bytes   int64
	Elapsed time.Duration
	CPU     time.Duration // the proxy's CPU time during the FETCH
	TLS     string
}

func (s bulkSample) mbps() float64 { return float64(s.Bytes) / s.Elapsed.Seconds() / 1e6 }

// bulkRow is the result for one target.
type bulkRow struct {
	Target   target
	MBps     float64 // median over rounds
	Ratio    float64 // median over rounds of MB/s divided by direct's in the same round
	RatioLo  float64 // its first quartile over rounds
	RatioHi  float64 // its third quartile
	CPUPerGB float64 // the proxy's CPU seconds per 10^9 bytes, over all rounds; NaN for direct
	TLS      string
	Samples  []float64 // MB/s of each round
}

// benchBulk FETCHes the mailbox (messages of size bytes) through every
// target, rounds times.
func benchBulk(ctx context.Context, ts []target, rounds, messages, size int) ([]bulkRow, error) {
	want := int64(messages) * int64(size)
	return rowsByVariant(ctx, ts, rounds, func(ctx context.Context, t target) (bulkSample, error) {
		return fetchAll(ctx, t, want)
	}, bulkRowOf)
}

// bulkRowOf makes t's row from its samples and direct's in the same rounds.
func bulkRowOf(t target, own, direct []bulkSample) bulkRow {
	row := bulkRow{Target: t, TLS: own[0].TLS, CPUPerGB: math.NaN()}
	var mbps, ratios []float64
	var bytes int64
	var cpu time.Duration
	for r, s := range own {
		mbps = append(mbps, s.mbps())
		ratios = append(ratios, s.mbps()/direct[r].mbps())
		bytes += s.Bytes
		cpu += s.CPU
	}
	row.Samples = mbps
	row.MBps, row.Ratio = median(mbps), median(ratios)
	row.RatioLo, row.RatioHi = quantile(ratios, 0.25), quantile(ratios, 0.75)
	if t.Proxy != nil {
		row.CPUPerGB = cpu.Seconds() / (float64(bytes) / 1e9)
	}
	return row
}

// fetchAll logs in, opens INBOX read-only and times one
// FETCH 1:* BODY.PEEK[], which must deliver at least want bytes. The
// proxy's CPU time is sampled around the FETCH only.
func fetchAll(ctx context.Context, t target, want int64) (bulkSample, error) {
	return inSession(ctx, t, 10*time.Minute, bulkReadBuffer, func(c *client) (bulkSample, error) {
		if err := c.command("EXAMINE INBOX"); err != nil {
			return bulkSample{}, err
		}
		u0, err := t.proxyUsage()
		if err != nil {
			return bulkSample{}, err
		}
		before := c.bytesRead()
		start := time.Now()
		if err := c.command("FETCH 1:* BODY.PEEK[]"); err != nil {
			return bulkSample{}, err
		}
		s := bulkSample{Elapsed: time.Since(start), Bytes: c.bytesRead() - before, TLS: tlsName(c.tls)}
		u1, err := t.proxyUsage()
		if err != nil {
			return bulkSample{}, err
		}
		s.CPU = u1.CPU - u0.CPU
		if s.Bytes < want {
			return s, fmt.Errorf("FETCH delivered %d bytes, the mailbox holds %d", s.Bytes, want)
		}
		return s, nil
	})
}

// tlsName describes a negotiated TLS connection: "TLS 1.3 AES_128_GCM
// X25519", or "" for plaintext.
func tlsName(cs tls.ConnectionState) string {
	if !cs.HandshakeComplete {
		return ""
	}
	suite := strings.TrimPrefix(tls.CipherSuiteName(cs.CipherSuite), "TLS_")
	suite = strings.TrimSuffix(suite, "_SHA256")
	suite = strings.TrimSuffix(suite, "_SHA384")
	return fmt.Sprintf("%s %s %s", tls.VersionName(cs.Version), suite, cs.CurveID)
}
