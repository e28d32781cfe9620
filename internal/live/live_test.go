package live

import (
	"slices"
	"sync"
	"testing"
)

// TestSet: members come and go until Close, which returns those present
// and refuses any later one.
func TestSet(t *testing.T) {
	var s Set[int]
	if !s.Add(1) || !s.Add(2) || !s.Add(3) {
		t.Fatal("Add refused before Close")
	}
	s.Remove(2)
	got := s.Members()
	slices.Sort(got)
	if !slices.Equal(got, []int{1, 3}) {
		t.Errorf("Members = %v, want [1 3]", got)
	}
	if s.Len() != 2 {
		t.Errorf("Len = %d, want 2", s.Len())
	}
	if s.Closed() {
		t.Error("Closed before Close")
	}
	got, first := s.Close()
	slices.Sort(got)
	if !first || !slices.Equal(got, []int{1, 3}) {
		t.Errorf("Close = %v, %v; want [1 3], true", got, first)
	}
	if s.Add(4) {
		t.Error("Add accepted after Close")
	}
	if !s.Closed() {
		t.Error("not Closed after Close")
	}
	if _, first := s.Close(); first {
		t.Error("second Close reported first")
	}
	s.Remove(1)
	if got := s.Members(); !slices.Equal(got, []int{3}) {
		t.Errorf("Members after Remove = %v, want [3]", got)
	}
}

// TestSetConcurrent: Add, Remove and Close from many goroutines (go test
// -race); every member added is either refused or returned by Close or
// removed.
func TestSetConcurrent(t *testing.T) {
	var s Set[int]
	var wg sync.WaitGroup
	for i := range 100 {
		wg.Go(func() {
			if s.Add(i) && i%2 == 0 {
				s.Remove(i)
			}
		})
	}
	wg.Wait()
	got, _ := s.Close()
	for _, v := range got {
		if v%2 == 0 {
			t.Errorf("%d was removed but is still a member", v)
		}
	}
	if len(got) != 50 {
		t.Errorf("%d members, want 50", len(got))
	}
}
