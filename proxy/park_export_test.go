package proxy

import "time"

// ParkedDirections counts the parked directions of s's forwarded
// sessions, for the external test package.
func ParkedDirections(s *Server) int {
	n := 0
	for _, ss := range s.sessions.Members() {
		ss.mu.Lock()
		fw := ss.fw
		ss.mu.Unlock()
		if fw != nil {
			n += fw.parkedCount()
		}
	}
	return n
}

// parkedCount is how many of f's directions are parked now.
func (f *forwarding) parkedCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, d := range []*direction{&f.toUp, &f.toClient} {
		if d.parked {
			n++
		}
	}
	return n
}

// ParkQuickly makes forwarded directions park after d of silence until
// the returned function restores the default.
func ParkQuickly(d time.Duration) (restore func()) {
	old := parkAfter.Swap(int64(d))
	return func() { parkAfter.Store(old) }
}
