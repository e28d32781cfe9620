package proxy

import (
	"io"
	"os"
	"time"

	"github.com/rs/zerolog"

	"github.com/imapwhy/imapwhy/internal/config"
)

// NewLogger makes the daemon's logger: JSON lines (or a human console
// format) on w, at the configured level. Events carry an "event" field
// (auth_success, auth_failure, session_end, ...) that scripts select on.
func NewLogger(c config.Log, w io.Writer) zerolog.Logger {
	if c.Format == "console" {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.TimeOnly, NoColor: !isTerminal(w)}
	}
	level, err := zerolog.ParseLevel(c.Level)
	if err != nil {
		level = zerolog.InfoLevel
	}
	return zerolog.New(w).Level(level).With().Timestamp().Logger()
}

// isTerminal reports whether w is a character device (a terminal), where
// colours help; in files and pipes they are noise.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
