package memlog

import (
	"fmt"
	"strings"
	"sync"
	"testing"
)

// TestBufferConcurrent: lines written by many goroutines while another
// reads all arrive whole (run with -race to check the locking).
func TestBufferConcurrent(t *testing.T) {
	var b Buffer
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 100 {
				fmt.Fprintf(&b, "writer %d line %d\n", i, j)
			}
		}()
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for b.Len() < 8*100*len("writer 0 line 0\n") {
			_ = b.String()
		}
	}()
	wg.Wait()
	<-done
	lines := strings.Split(strings.TrimSuffix(string(b.Bytes()), "\n"), "\n")
	if len(lines) != 800 {
		t.Fatalf("%d lines, want 800", len(lines))
	}
	for _, l := range lines {
		var i, j int
		if n, err := fmt.Sscanf(l, "writer %d line %d", &i, &j); n != 2 || err != nil {
			t.Fatalf("torn line %q", l)
		}
	}
}
