package proxy

// Issue 8: the notice mailbox. A listener with notice_mailbox: true answers
// a login that failed for a cause typing cannot fix (notice.Eligible) with
// OK, and hands the connection to notice.Server, whose read-only INBOX
// holds one message explaining the problem (see incident.go for how the
// answer is chosen, and README "The notice mailbox" for the trade-off).

import (
	"fmt"
	"time"

	"github.com/rs/zerolog"

	"github.com/imapwhy/imapwhy/internal/notify/notice"
)

// noticeServer returns the notice mailbox server, started on first use;
// nil once Shutdown has begun (the login then gets a NO).
func (r *reach) noticeServer() *notice.Server {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.noticeClosed {
		return nil
	}
	if r.noticeSrv == nil {
		r.noticeSrv = notice.NewServer(notice.Options{
			MaxSession: r.opts.Reach.NoticeMaxSession,
			Logger:     imapLogger{r.log},
		})
	}
	return r.noticeSrv
}

// closeNotice ends every notice session: they hold nothing worth draining.
func (r *reach) closeNotice() {
	r.mu.Lock()
	srv := r.noticeSrv
	r.noticeClosed = true
	r.mu.Unlock()
	if srv != nil {
		srv.Close()
	}
}

// serveNotice runs the notice session after send answered the login with
// OK. It reports whether it did: the client connection is then closed and
// the session is over.
func (a *answer) serveNotice(f *front, user string, log *zerolog.Logger) bool {
	if a.notice == nil {
		return false
	}
	br := f.reader()
	pending, _ := br.Peek(br.Buffered()) // bytes pipelined after the login
	pending = append([]byte(nil), pending...)
	start := time.Now()
	log.Info().Str("event", "notice_start").Str("user", user).Str("cause", string(a.notice.Cause)).
		Msg("login answered with the notice mailbox")
	err := a.srv.Serve(f.conn(), pending, *a.notice)
	ev := log.Info()
	if err != nil {
		ev = log.Debug().Err(err)
	}
	ev.Str("event", "notice_end").Str("user", user).Dur("duration", time.Since(start)).Msg("notice mailbox session ended")
	return true
}

// imapLogger sends go-imap's messages (mostly clients going away) to the
// debug log.
type imapLogger struct{ l zerolog.Logger }

func (l imapLogger) Printf(format string, args ...any) {
	l.l.Debug().Str("event", "notice_imap").Msg(fmt.Sprintf(format, args...))
}
