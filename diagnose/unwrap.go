package diagnose

import (
	"regexp"
	"strings"
)

// Support desks paste what a library or a mail app printed, not the wire:
// Python's imaplib shows the server's text as a bytes literal
// (b'[AUTHENTICATIONFAILED] Invalid credentials (Failure)'), mbsync writes
// "IMAP command 'LOGIN ...' returned an error: NO ...", Perl's
// Mail::IMAPClient "ERROR: 4 NO ... at .../IMAPClient.pm line 1388.".
// unwrapClientText finds the server's own words in such a line; a line
// that is none of these is returned as it is.
func unwrapClientText(line string) string {
	for range 3 { // wrappers nest: "Error: b'...'"
		next := unwrapOnce(line)
		if next == line {
			break
		}
		line = next
	}
	return line
}

var (
	// bytesLiteralRE is the last Python bytes literal of a line.
	bytesLiteralRE = regexp.MustCompile(`b(?:'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)")`)
	// wrapperRE is a library's lead-in before the server's response.
	wrapperRE = regexp.MustCompile(`(?i)^.*?(?:returned an error|no response|bad response|server (?:said|says|responded|response|returned)|response|error|exception|alert \*\*\*|failed)\s*[:=]?\s*(?:\*\*\*\s*)?((?:[A-Za-z0-9.]+ )?(?:OK|NO|BAD|BYE) .*|\[[A-Z][A-Z-]*[ \]].*)$`)
	// perlAtRE is Perl's " at FILE line N." after a die message.
	perlAtRE = regexp.MustCompile(` at \S+\.pm line \d+\.?$`)
)

func unwrapOnce(line string) string {
	line = strings.TrimSpace(perlAtRE.ReplaceAllString(line, ""))
	if ms := bytesLiteralRE.FindAllStringSubmatch(line, -1); len(ms) > 0 {
		m := ms[len(ms)-1]
		inner := m[1]
		if inner == "" {
			inner = m[2]
		}
		inner = strings.NewReplacer(`\r`, "", `\n`, "", `\'`, "'", `\"`, `"`, `\\`, `\`).Replace(inner)
		if strings.TrimSpace(inner) != "" {
			return strings.TrimSpace(inner)
		}
	}
	if m := wrapperRE.FindStringSubmatch(line); m != nil && m[1] != line {
		return strings.TrimSpace(m[1])
	}
	return line
}
