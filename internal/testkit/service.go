package testkit

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// Service is a server a test starts and shuts down: the proxy, its web
// side, an admin listener.
type Service interface {
	Start() error
	Shutdown(context.Context) error
}

// Start takes what a constructor returned, fails the test on its error,
// starts s and shuts it down when the test ends, within Timeout, reporting
// a shutdown that fails.
func Start[S Service](t testing.TB, s S, err error) S {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), Timeout)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("%T Shutdown: %v", s, err)
		}
	})
	return s
}

// ShowOnFailure prints what (a log) under name when the test has failed,
// at its end: after the cleanups registered later, such as Start's.
func ShowOnFailure(t testing.TB, name string, what fmt.Stringer) {
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s:\n%s", name, what)
		}
	})
}

// ShutdownAsync starts shutdown in its own goroutine with a context bounded
// by d, while the test watches the clients; the channel gets its result.
func ShutdownAsync(shutdown func(context.Context) error, d time.Duration) <-chan error {
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), d)
		defer cancel()
		done <- shutdown(ctx)
	}()
	return done
}
