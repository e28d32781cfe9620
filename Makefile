# Shortcuts. scripts/test is the one test command (CI runs it through .ci/run).
#
#   make test                 scripts/test: go vet and go test ./... (installs Dovecot if missing)
#   make fuzz                 each fuzz target for FUZZTIME (default 60s)
#   make fuzz FUZZTIME=10m
#   make load                 the long load run: 2,000 sessions for 60 s through the proxy to Dovecot
#
# An input that makes a fuzz target fail is written by go test into the
# package's testdata/fuzz/<target>/; from then on every `go test` replays it
# as a seed. Commit it with the fix.

GO ?= go
FUZZTIME ?= 60s
export GOFLAGS ?= -mod=mod

.PHONY: test fuzz fuzz-preauth fuzz-transcript fuzz-wire load

test:
	scripts/test

fuzz: fuzz-preauth fuzz-transcript fuzz-wire

# The pre-auth parser and state machine (proxy/preauth*.go, reading with
# internal/imapwire's command reader).
fuzz-preauth:
	$(GO) test -run='^FuzzPreauth$$' -fuzz='^FuzzPreauth$$' -fuzztime=$(FUZZTIME) ./proxy/

# The transcript parser of `imapwhy explain` (diagnose/transcript.go).
fuzz-transcript:
	$(GO) test -run='^FuzzParseTranscript$$' -fuzz='^FuzzParseTranscript$$' -fuzztime=$(FUZZTIME) ./diagnose/

# Reading server responses (internal/imapwire), as the upstream client does.
fuzz-wire:
	$(GO) test -run='^FuzzReadResponse$$' -fuzz='^FuzzReadResponse$$' -fuzztime=$(FUZZTIME) ./internal/imapwire/

load:
	IMAPWHY_LOAD=long $(GO) test -count=1 -v -timeout 30m -run '^TestLoadThroughProxy$$' ./internal/loadtest/
