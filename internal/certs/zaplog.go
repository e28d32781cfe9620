package certs

import (
	"github.com/rs/zerolog"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// newZapLogger returns a zap logger that writes into log, so certmagic's
// messages (obtaining, renewing, challenge solving) appear in imapwhy's own
// log stream, each with a "logger" field such as "certmagic.obtain".
func newZapLogger(log zerolog.Logger) *zap.Logger {
	return zap.New(zerologCore{log: log}).Named("certmagic")
}

// zerologCore is a zapcore.Core that forwards entries to a zerolog.Logger.
type zerologCore struct {
	log zerolog.Logger
}

var _ zapcore.Core = zerologCore{}

func (c zerologCore) Enabled(l zapcore.Level) bool {
	zl := zerologLevel(l)
	return zl >= c.log.GetLevel() && zl >= zerolog.GlobalLevel()
}

func (c zerologCore) With(fields []zapcore.Field) zapcore.Core {
	return zerologCore{log: c.log.With().Fields(encodeFields(fields)).Logger()}
}

func (c zerologCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c zerologCore) Write(e zapcore.Entry, fields []zapcore.Field) error {
	ev := c.log.WithLevel(zerologLevel(e.Level))
	if ev == nil {
		return nil
	}
	if len(fields) > 0 {
		ev = ev.Fields(encodeFields(fields))
	}
	if e.LoggerName != "" {
		ev = ev.Str("logger", e.LoggerName)
	}
	ev.Msg(e.Message)
	return nil
}

func (zerologCore) Sync() error { return nil }

// zerologLevel maps zap's levels to zerolog's. zap's panic and fatal levels
// become errors: zap itself panics or exits after writing, and zerolog must
// not do it a second time.
func zerologLevel(l zapcore.Level) zerolog.Level {
	switch l {
	case zapcore.DebugLevel:
		return zerolog.DebugLevel
	case zapcore.InfoLevel:
		return zerolog.InfoLevel
	case zapcore.WarnLevel:
		return zerolog.WarnLevel
	default:
		return zerolog.ErrorLevel
	}
}

func encodeFields(fields []zapcore.Field) map[string]any {
	enc := zapcore.NewMapObjectEncoder()
	for _, f := range fields {
		f.AddTo(enc)
	}
	return enc.Fields
}
