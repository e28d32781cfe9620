package certs

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/rs/zerolog"
	"go.uber.org/zap"
)

// TestZapLogger: certmagic's zap messages arrive in zerolog with their
// level, fields, and logger name, and below the zerolog level not at all.
func TestZapLogger(t *testing.T) {
	tests := []struct {
		name      string
		min       zerolog.Level
		log       func(l *zap.Logger)
		wantLevel string // "" means nothing written
		wantField map[string]any
	}{
		{
			name:      "info with fields",
			min:       zerolog.DebugLevel,
			log:       func(l *zap.Logger) { l.Info("obtaining certificate", zap.String("identifier", "mail.example.test")) },
			wantLevel: "info",
			wantField: map[string]any{"identifier": "mail.example.test", "logger": "certmagic", "message": "obtaining certificate"},
		},
		{
			name: "error through a named child with fields",
			min:  zerolog.DebugLevel,
			log: func(l *zap.Logger) {
				l.Named("obtain").With(zap.Strings("identifiers", []string{"a.test"})).Error("could not get certificate", zap.Error(errors.New("boom")))
			},
			wantLevel: "error",
			wantField: map[string]any{"logger": "certmagic.obtain", "error": "boom", "identifiers": []any{"a.test"}},
		},
		{
			name:      "dpanic is an error, not a panic",
			min:       zerolog.DebugLevel,
			log:       func(l *zap.Logger) { l.DPanic("odd") },
			wantLevel: "error",
		},
		{
			name: "debug below the level is dropped",
			min:  zerolog.InfoLevel,
			log:  func(l *zap.Logger) { l.Debug("choosing certificate") },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b strings.Builder
			tt.log(newZapLogger(zerolog.New(&b).Level(tt.min)))
			if tt.wantLevel == "" {
				if b.Len() != 0 {
					t.Errorf("wrote %q, want nothing", b.String())
				}
				return
			}
			var got map[string]any
			if err := json.Unmarshal([]byte(b.String()), &got); err != nil {
				t.Fatalf("not one JSON line: %q: %v", b.String(), err)
			}
			if got["level"] != tt.wantLevel {
				t.Errorf("level = %v, want %s", got["level"], tt.wantLevel)
			}
			for k, want := range tt.wantField {
				if g, _ := json.Marshal(got[k]); string(g) != mustJSON(t, want) {
					t.Errorf("%s = %s, want %s", k, g, mustJSON(t, want))
				}
			}
		})
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
