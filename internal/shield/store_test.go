package shield

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

// stores runs a test on each Store implementation, empty, for at most max
// records.
func stores(t *testing.T, max int, test func(t *testing.T, s Store)) {
	t.Run("memory", func(t *testing.T) {
		s := NewMemoryStore(max)
		defer s.Close()
		test(t, s)
	})
	t.Run("file", func(t *testing.T) {
		s, err := OpenFileStore(filepath.Join(t.TempDir(), historyFile), max)
		if err != nil {
			t.Fatal(err)
		}
		defer func() {
			if err := s.Close(); err != nil {
				t.Error(err)
			}
		}()
		test(t, s)
	})
}

var t0 = time.Date(2026, 11, 27, 3, 0, 0, 0, time.UTC)

// put stores a record with one failure under key until expires.
func put(t *testing.T, s Store, key string, now, expires time.Time) {
	t.Helper()
	err := s.Update(key, now, func(r *Record) time.Time {
		r.Salt = []byte("salt-" + key)
		r.Failed = []Failure{{Verifier: make([]byte, verifierSize), Last: now, Forwarded: 1, Cause: "credentials.rejected"}}
		return expires
	})
	if err != nil {
		t.Fatal(err)
	}
}

func has(t *testing.T, s Store, key string, now time.Time) bool {
	t.Helper()
	r, ok, err := s.Get(key, now)
	if err != nil {
		t.Fatal(err)
	}
	if ok && string(r.Salt) != "salt-"+key {
		t.Fatalf("%s holds %q", key, r.Salt)
	}
	return ok
}

func TestStoreUpdateAndExpiry(t *testing.T) {
	stores(t, 10, func(t *testing.T, s Store) {
		put(t, s, "a", t0, t0.Add(time.Hour))
		if !has(t, s, "a", t0.Add(59*time.Minute)) {
			t.Error("lost before its expiry")
		}
		if has(t, s, "a", t0.Add(time.Hour)) {
			t.Error("kept at its expiry")
		}
		// Update sees an expired record as none.
		s.Update("a", t0.Add(2*time.Hour), func(r *Record) time.Time {
			if r.Salt != nil {
				t.Errorf("Update got an expired record: %+v", r)
			}
			return time.Time{}
		})
		// A zero expiry deletes.
		put(t, s, "b", t0, t0.Add(time.Hour))
		s.Update("b", t0, func(r *Record) time.Time {
			if string(r.Salt) != "salt-b" || len(r.Failed) != 1 || r.Failed[0].Forwarded != 1 {
				t.Errorf("Update got %+v", r)
			}
			return time.Time{}
		})
		if has(t, s, "b", t0) {
			t.Error("kept after a zero expiry")
		}
	})
}

// TestStoreIsolation: a record handed out is a copy.
func TestStoreIsolation(t *testing.T) {
	stores(t, 10, func(t *testing.T, s Store) {
		put(t, s, "a", t0, t0.Add(time.Hour))
		r, _, _ := s.Get("a", t0)
		r.Salt[0] = 'X'
		r.Failed[0].Forwarded = 99
		if r2, _, _ := s.Get("a", t0); string(r2.Salt) != "salt-a" || r2.Failed[0].Forwarded != 1 {
			t.Errorf("changing a copy changed the store: %+v", r2)
		}
	})
}

// TestStoreBound: past the bound, the record that expires first goes.
func TestStoreBound(t *testing.T) {
	stores(t, 3, func(t *testing.T, s Store) {
		put(t, s, "month", t0, t0.Add(30*24*time.Hour))
		put(t, s, "hour", t0, t0.Add(time.Hour))
		put(t, s, "day", t0, t0.Add(24*time.Hour))
		put(t, s, "week", t0, t0.Add(7*24*time.Hour))
		for key, want := range map[string]bool{"hour": false, "day": true, "week": true, "month": true} {
			if has(t, s, key, t0) != want {
				t.Errorf("%s kept = %v, want %v", key, !want, want)
			}
		}
		// Rewriting a record moves it in the order.
		put(t, s, "day", t0, t0.Add(60*24*time.Hour))
		put(t, s, "minute", t0, t0.Add(time.Minute))
		for key, want := range map[string]bool{"day": true, "week": false, "month": true, "minute": true} {
			if has(t, s, key, t0) != want {
				t.Errorf("after a rewrite: %s kept = %v, want %v", key, !want, want)
			}
		}
	})
}

// TestStoreSweep: expired records are dropped by later updates, so a store
// full of old records takes new ones without evicting live ones.
func TestStoreSweep(t *testing.T) {
	stores(t, 100, func(t *testing.T, s Store) {
		for i := range 100 {
			put(t, s, fmt.Sprint("old", i), t0, t0.Add(time.Minute))
		}
		later := t0.Add(time.Hour)
		for i := range 50 {
			put(t, s, fmt.Sprint("new", i), later, later.Add(time.Hour))
		}
		for i := range 50 {
			if !has(t, s, fmt.Sprint("new", i), later) {
				t.Fatalf("new%d evicted", i)
			}
		}
	})
}

// TestFileStoreCount: the file store's record count survives a reopen and
// bounds it there too; a second process cannot open the file meanwhile.
func TestFileStoreCount(t *testing.T) {
	path := filepath.Join(t.TempDir(), historyFile)
	s, err := OpenFileStore(path, 2)
	if err != nil {
		t.Fatal(err)
	}
	put(t, s, "a", t0, t0.Add(time.Hour))
	put(t, s, "b", t0, t0.Add(2*time.Hour))
	if s2, err := OpenFileStore(path, 2); err == nil {
		s2.Close()
		t.Error("opened twice at once")
	}
	s.Close()
	s, err = OpenFileStore(path, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	put(t, s, "c", t0, t0.Add(3*time.Hour))
	for key, want := range map[string]bool{"a": false, "b": true, "c": true} {
		if has(t, s, key, t0) != want {
			t.Errorf("after a reopen: %s kept = %v, want %v", key, !want, want)
		}
	}
}
