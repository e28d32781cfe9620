package dovecottest

import (
	"bytes"
	"os"
	"strconv"
	"strings"
)

// processIdentity is "pid start-time" (start time in clock ticks since boot,
// field 22 of /proc/pid/stat), which stays unique across pid reuse; "" if
// the process does not exist.
func processIdentity(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return ""
	}
	// The command name (field 2) is in parentheses and may contain spaces.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return ""
	}
	fields := strings.Fields(string(b[i+1:]))
	const startTime = 22 - 3 // fields after ")" start at field 3
	if len(fields) <= startTime {
		return ""
	}
	return strconv.Itoa(pid) + " " + fields[startTime]
}

// cmdlineMentions reports whether pid's command line contains arg.
func cmdlineMentions(pid int, arg string) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return false
	}
	for _, a := range bytes.Split(b, []byte{0}) {
		if string(a) == arg {
			return true
		}
	}
	return false
}
