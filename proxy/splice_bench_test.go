//go:build unix

package proxy

import (
	"bufio"
	"io"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/imapwhy/imapwhy/internal/testkit"
)

// BenchmarkSplice measures forwarding throughput over loopback for each
// pair of connection kinds, in the direction of a FETCH (down: server to
// app) and of an APPEND (up). The far ends run in the same process, so
// TLS on a side costs its encryption and its decryption here. Besides
// MB/s it reports cpu-ns/op, the process's CPU time (user and system) per
// 64 KiB: on a busy machine wall time varies with the neighbours' load,
// CPU time much less.
func BenchmarkSplice(b *testing.B) {
	pki := testkit.NewPKI(b)
	const chunk = 64 << 10
	for _, k := range spliceKinds {
		for _, dir := range []string{"down", "up"} {
			b.Run(k.name+"/"+dir, func(b *testing.B) {
				r := newSpliceRig(b, pki, k.clientTLS, k.upTLS)
				done := r.start("", "")
				from, to := r.server, r.app
				if dir == "up" {
					from, to = to, from
				}
				deadline := time.Now().Add(5 * time.Minute)
				from.SetDeadline(deadline)
				to.SetDeadline(deadline)
				data := make([]byte, chunk)
				b.SetBytes(chunk)
				b.ReportAllocs()
				b.ResetTimer()
				cpu := processCPU()
				received := make(chan error, 1)
				go func() { received <- drain(to, int64(b.N)*chunk) }()
				for i := 0; i < b.N; i++ {
					if _, err := from.Write(data); err != nil {
						b.Fatal(err)
					}
				}
				if err := <-received; err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				b.ReportMetric(float64(processCPU()-cpu)/float64(b.N), "cpu-ns/op")
				r.app.Close()
				r.server.Close()
				<-done
			})
		}
	}
}

// processCPU is the user and system time the process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// drain reads and drops n bytes from r.
func drain(r io.Reader, n int64) error {
	buf := make([]byte, 64<<10)
	for n > 0 {
		k, err := r.Read(buf[:min(int64(len(buf)), n)])
		n -= int64(k)
		if err != nil {
			return err
		}
	}
	return nil
}

// BenchmarkSpliceIdle measures what forwarding adds to idle sessions whose
// connections (and TLS state) already exist: live heap, goroutine stack
// and goroutines per session, with every copy loop waiting for data after
// one exchange each way. Each iteration holds idleSessions sessions; run
// it with -benchtime=1x. The figures are reported as B/session,
// stack-B/session and goroutines/session.
func BenchmarkSpliceIdle(b *testing.B) {
	const idleSessions = 1000
	defer ParkQuickly(100 * time.Millisecond)()
	pki := testkit.NewPKI(b)
	for _, k := range spliceKinds {
		b.Run(k.name, func(b *testing.B) {
			for b.Loop() {
				rigs := make([]*spliceRig, idleSessions)
				for i := range rigs {
					rigs[i] = newSpliceRig(b, pki, k.clientTLS, k.upTLS)
				}
				before := takeMemSnapshot()
				dones := make([]<-chan spliceResult, len(rigs))
				for i, r := range rigs {
					// startForwarding, as the proxy does: no goroutine
					// of the test's waits on it.
					done := make(chan spliceResult, 1)
					dones[i] = done
					startForwarding(r.proxyClient, bufio.NewReader(strings.NewReader("")), r.proxyUp, bufio.NewReader(strings.NewReader("")),
						func(u, c int64) { done <- spliceResult{u, c} }, nil)
					exchange(b, r)
				}
				if idleParker() != nil {
					// Quiet sessions park: wait for all of them.
					testkit.WaitFor(b, func() bool { return parkedDirections.Load() == 2*idleSessions })
				}
				after := takeMemSnapshot()
				for i, r := range rigs {
					r.app.Close()
					r.server.Close()
					<-dones[i]
				}
				b.ReportMetric(float64(after.heap-before.heap)/idleSessions, "B/session")
				b.ReportMetric(float64(int64(after.stack)-int64(before.stack))/idleSessions, "stack-B/session")
				b.ReportMetric(float64(after.goroutines-before.goroutines)/idleSessions, "goroutines/session")
			}
		})
	}
}

// exchange passes one short line each way through a session.
func exchange(b testing.TB, r *spliceRig) {
	deadline := time.Now().Add(spliceWait)
	for _, p := range [][2]interface {
		io.Writer
		io.Reader
		SetDeadline(time.Time) error
	}{{r.app, r.server}, {r.server, r.app}} {
		p[0].SetDeadline(deadline)
		p[1].SetDeadline(deadline)
		if _, err := io.WriteString(p[0], "a1 NOOP\r\n"); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(p[1], make([]byte, len("a1 NOOP\r\n"))); err != nil {
			b.Fatal(err)
		}
		p[0].SetDeadline(time.Time{})
		p[1].SetDeadline(time.Time{})
	}
}

// memSnapshot is the process's live memory after a full collection.
type memSnapshot struct {
	heap, stack uint64
	goroutines  int
}

func takeMemSnapshot() memSnapshot {
	// Twice: the first collection moves sync.Pool contents to the victim
	// cache, the second frees them, so that only what is held counts.
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return memSnapshot{heap: m.HeapAlloc, stack: m.StackInuse, goroutines: runtime.NumGoroutine()}
}
