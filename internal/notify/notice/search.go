package notice

import (
	"io"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
)

// containsMessage reports whether a FETCH number set names the one message
// (sequence number 1, UID 1). "*" is the largest number, here 1.
func containsMessage(set imap.NumSet) bool {
	switch s := set.(type) {
	case imap.SeqSet:
		for _, r := range s {
			if rangeHasOne(r.Start, r.Stop) {
				return true
			}
		}
	case imap.UIDSet:
		for _, r := range s {
			if rangeHasOne(uint32(r.Start), uint32(r.Stop)) {
				return true
			}
		}
	}
	return false // includes SEARCHRES ("$"), which is not offered
}

// rangeHasOne: does start:stop contain 1, with 0 standing for "*" (= 1)?
func rangeHasOne(start, stop uint32) bool {
	if start == 0 {
		start = 1
	}
	if stop == 0 {
		stop = 1
	}
	return min(start, stop) <= 1 && max(start, stop) >= 1
}

// matches evaluates SEARCH criteria against the one message, which has no
// flags (it is unseen and can never be marked).
func (m *message) matches(c *imap.SearchCriteria) bool {
	for _, s := range c.SeqNum {
		if !containsMessage(s) {
			return false
		}
	}
	for _, s := range c.UID {
		if !containsMessage(s) {
			return false
		}
	}
	if !inDateRange(m.date, c.Since, c.Before) || !inDateRange(m.date, c.SentSince, c.SentBefore) {
		return false
	}
	for _, h := range c.Header {
		v, ok := m.headers[strings.ToLower(h.Key)]
		if !ok || !containsFold(v, h.Value) {
			return false
		}
	}
	for _, s := range c.Body {
		if !containsFold(m.text, s) {
			return false
		}
	}
	for _, s := range c.Text {
		if !containsFold(m.text, s) && !containsFold(string(m.raw), s) {
			return false
		}
	}
	if len(c.Flag) > 0 {
		return false
	}
	size := int64(len(m.raw))
	if (c.Larger > 0 && size <= c.Larger) || (c.Smaller > 0 && size >= c.Smaller) {
		return false
	}
	for i := range c.Not {
		if m.matches(&c.Not[i]) {
			return false
		}
	}
	for _, or := range c.Or {
		if !m.matches(&or[0]) && !m.matches(&or[1]) {
			return false
		}
	}
	return true
}

// inDateRange compares dates only, as SEARCH does (RFC 9051 §6.4.4).
func inDateRange(t, since, before time.Time) bool {
	day := func(t time.Time) time.Time { y, m, d := t.Date(); return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }
	if !since.IsZero() && day(t).Before(day(since)) {
		return false
	}
	if !before.IsZero() && !day(t).Before(day(before)) {
		return false
	}
	return true
}

func containsFold(s, sub string) bool {
	return strings.Contains(strings.ToLower(s), strings.ToLower(sub))
}

// writeAll writes b to a FETCH section writer and closes it.
func writeAll(wc io.WriteCloser, b []byte) error {
	_, werr := wc.Write(b)
	cerr := wc.Close()
	if werr != nil {
		return werr
	}
	return cerr
}
