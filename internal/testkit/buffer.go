package testkit

import (
	"encoding/json"
	"strings"

	"github.com/imapwhy/imapwhy/internal/memlog"
)

// Buffer is a log kept in memory, safe for concurrent writers and
// readers: what a logger or a child process writes while the test reads it.
type Buffer struct {
	memlog.Buffer
}

// Events returns the JSON lines written whose "event" field is name,
// decoded: a log's events of one kind.
func (b *Buffer) Events(name string) []map[string]any {
	var out []map[string]any
	for _, line := range strings.Split(b.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["event"] == name {
			out = append(out, m)
		}
	}
	return out
}
