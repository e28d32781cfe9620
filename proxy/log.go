package proxy

import (
	"io"
	"time"

	"github.com/rs/zerolog"

	"github.com/imapwhy/imapwhy/config"
)

// NewLogger makes the daemon's logger: JSON lines (or a human console
// format) on w, at the configured level. Events carry an "event" field
// (auth_success, auth_failure, session_end, ...) that scripts select on.
func NewLogger(c config.Log, w io.Writer) zerolog.Logger {
	if c.Format == "console" {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.TimeOnly}
	}
	level, err := zerolog.ParseLevel(c.Level)
	if err != nil {
		level = zerolog.InfoLevel
	}
	return zerolog.New(w).Level(level).With().Timestamp().Logger()
}
