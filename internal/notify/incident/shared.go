package incident

import "time"

// Shared keeps incidents for every instance behind a load balancer, so
// that a link made by one opens on the others (internal/state keeps them
// in Redis). Each method may fail (the shared store is unreachable): the
// Store then answers from this process's own memory, which always holds
// the incidents it made.
type Shared interface {
	// Put keeps in until its time plus ttl, and counts it in its hour.
	Put(in Incident, ttl time.Duration) error
	// Get returns the live incident with that ID.
	Get(id string) (Incident, bool, error)
	// Recent returns at most limit live incidents, newest first.
	Recent(limit int) ([]Incident, error)
	// Hourly returns the failures counted in each of the hours given
	// (Unix hours), in that order.
	Hourly(hours []int64) ([]int, error)
}

// sharedRecentMax bounds what the status page reads from the shared
// store when it filters.
const sharedRecentMax = 1000

func (s *Store) putShared(in Incident) {
	if s.shared != nil {
		s.shared.Put(in, s.ttl) // a failure: the incident is still here
	}
}

func (s *Store) getShared(id string) (Incident, bool) {
	if s.shared == nil {
		return Incident{}, false
	}
	in, ok, err := s.shared.Get(id)
	if err != nil || !ok || !s.now().Before(in.Time.Add(s.ttl)) {
		return Incident{}, false
	}
	return in, true
}

// recentShared is Recent from the shared store; ok is false without one
// or when it fails.
func (s *Store) recentShared(keep func(*Incident) bool, limit int) ([]Incident, bool) {
	if s.shared == nil {
		return nil, false
	}
	n := min(s.max, sharedRecentMax)
	if keep == nil && limit > 0 {
		n = min(limit, n)
	}
	all, err := s.shared.Recent(n)
	if err != nil {
		return nil, false
	}
	now := s.now()
	var out []Incident
	for i := range all {
		if !now.Before(all[i].Time.Add(s.ttl)) || (keep != nil && !keep(&all[i])) {
			continue
		}
		out = append(out, all[i])
		if limit > 0 && len(out) == limit {
			break
		}
	}
	return out, true
}

// hourlyShared is Hourly from the shared store's counts.
func (s *Store) hourlyShared() ([]HourBucket, bool) {
	if s.shared == nil {
		return nil, false
	}
	nowHour := s.now().Unix() / 3600
	hours := make([]int64, chartHours)
	for i := range hours {
		hours[i] = nowHour - chartHours + 1 + int64(i)
	}
	counts, err := s.shared.Hourly(hours)
	if err != nil || len(counts) != len(hours) {
		return nil, false
	}
	out := make([]HourBucket, chartHours)
	for i, h := range hours {
		out[i] = HourBucket{Start: time.Unix(h*3600, 0), Count: counts[i]}
	}
	return out, true
}
