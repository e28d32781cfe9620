//go:build !unix

package dovecottest

// Dovecot runs on Unix only; these keep the package compiling elsewhere
// (Start fails there: no dovecot binary).

func processIdentity(int) string { return "" }

func cmdlineMentions(int, string) bool { return false }
