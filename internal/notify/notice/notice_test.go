package notice

import (
	"bytes"
	"io"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/imapwhy/imapwhy/diagnose"
	"github.com/imapwhy/imapwhy/internal/testkit"
)

// TestEligible decides every cause explicitly: a new cause must be added
// here, on purpose, to one side.
func TestEligible(t *testing.T) {
	never := []diagnose.Cause{
		diagnose.CausePasswordSurroundingSpace, diagnose.CausePasswordFullwidth, diagnose.CausePasswordNonASCII,
		diagnose.CausePasswordEmpty, diagnose.CauseUsernameMissingDomain, diagnose.CauseUsernameSurroundingSpace,
		diagnose.CauseUsernameFullwidth, diagnose.CauseCredentialsRejected, diagnose.CauseCredentialsCapsLock,
		diagnose.CauseCredentialsPasswordChanged, diagnose.CauseClientPlaintextRefused, diagnose.CauseClientRateLimited,
		diagnose.CauseClientTooManyConnections, diagnose.CauseClientUnsupportedMechanism, diagnose.CauseClientUnknownDomain,
		diagnose.CauseClientInvalidUsername,
		diagnose.CauseOAuthTokenExpired, diagnose.CauseOAuthTokenRejected,
		diagnose.CauseServerBadCommand,
	}
	for _, c := range diagnose.Causes() {
		want := !slices.Contains(never, c)
		if eligibleCauses[c] != want {
			t.Errorf("%s: eligible %v, want %v", c, eligibleCauses[c], want)
		}
		for _, conf := range []diagnose.Confidence{diagnose.High, diagnose.Medium, diagnose.Low} {
			d := diagnose.Diagnosis{Cause: c, Confidence: conf}
			got := Eligible(d)
			wantHere := want && (conf != diagnose.Low || c == diagnose.CauseCredentialsRepeatedFailure)
			if got != wantHere {
				t.Errorf("Eligible(%s, %s) = %v, want %v", c, conf, got, wantHere)
			}
		}
	}
	tests := []struct {
		d    diagnose.Diagnosis
		want bool
	}{
		// A guess from the password's shape comes with the honest
		// alternative: it may just be the wrong password.
		{diagnose.Diagnosis{Cause: diagnose.CauseProviderAppPasswordRequired, Confidence: diagnose.Medium, Alternative: diagnose.CauseCredentialsRejected}, false},
		{diagnose.Diagnosis{Cause: diagnose.CauseAccountLocked, Confidence: diagnose.High, Alternative: diagnose.CauseServerTemporaryFailure}, true},
		{diagnose.Diagnosis{Cause: diagnose.CauseServerTemporaryFailure, Confidence: diagnose.Medium, Alternative: diagnose.CausePasswordFullwidth}, false},
		// The shield held back a password the server refused repeatedly.
		{diagnose.Diagnosis{Cause: diagnose.CauseCredentialsRepeatedFailure, Confidence: diagnose.High, Alternative: diagnose.CauseCredentialsPasswordChanged}, true},
	}
	for _, tt := range tests {
		if got := Eligible(tt.d); got != tt.want {
			t.Errorf("Eligible(%+v) = %v, want %v", tt.d, got, tt.want)
		}
	}
}

func sampleNotice(lang string) Notice {
	n := Notice{
		User: "ann@example.com", Lang: lang, Cause: diagnose.CauseProviderIMAPDisabled,
		Message:      "IMAP access is switched off in your Gmail settings. Switch it on, then try again.",
		Steps:        []string{"Sign in to the website.", "Turn on IMAP."},
		ProviderName: "Gmail", HelpURL: "https://support.google.com/mail/answer/7126229",
		Time: time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC),
	}
	if lang == "ja" {
		n.Message = "Gmailの設定でIMAPアクセスがオフになっています。オンにしてから、もう一度お試しください。"
		n.Steps = []string{"Webブラウザでログインしてください。", "IMAPをオンにしてください。"}
	}
	return n
}

func TestCompose(t *testing.T) {
	for _, lang := range []string{"en", "ja"} {
		t.Run(lang, func(t *testing.T) {
			n := sampleNotice(lang)
			m := compose(n)
			msg, err := mail.ReadMessage(bytes.NewReader(m.raw))
			if err != nil {
				t.Fatal(err)
			}
			h := msg.Header
			subject, err := new(mime.WordDecoder).DecodeHeader(h.Get("Subject"))
			if err != nil || subject != words[lang].subject {
				t.Errorf("Subject %q (%v)", subject, err)
			}
			if d, err := h.Date(); err != nil || !d.Equal(n.Time) {
				t.Errorf("Date %v (%v)", d, err)
			}
			from, err := h.AddressList("From")
			if err != nil || from[0].Address != "imapwhy@imapwhy.invalid" {
				t.Errorf("From %v (%v)", from, err)
			}
			if h.Get("To") != "<ann@example.com>" || h.Get("Content-Type") != "text/plain; charset=utf-8" ||
				h.Get("MIME-Version") != "1.0" || h.Get("Auto-Submitted") != "auto-generated" || h.Get("Message-Id") == "" {
				t.Errorf("headers %v", h)
			}
			body, err := io.ReadAll(quotedprintable.NewReader(msg.Body))
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{n.Message, "1. " + n.Steps[0], "2. " + n.Steps[1], n.HelpURL, "Cause: provider.imap_disabled"} {
				if lang == "ja" {
					want = strings.Replace(want, "Cause:", "原因:", 1)
				}
				if !strings.Contains(string(body), want) {
					t.Errorf("body lacks %q:\n%s", want, body)
				}
			}
			if !bytes.Contains(m.raw, []byte("\r\n\r\n")) || bytes.Contains(bytes.ReplaceAll(m.raw, []byte("\r\n"), nil), []byte("\n")) {
				t.Error("lines are not CRLF")
			}
			if compose(n).uidValidity != m.uidValidity || m.uidValidity == 0 {
				t.Error("the same notice got another UIDVALIDITY")
			}
			n.Message += " More."
			if compose(n).uidValidity == m.uidValidity {
				t.Error("another notice reuses the UIDVALIDITY")
			}
		})
	}
	odd := sampleNotice("en")
	odd.User = "evil\r\nBcc: x@example.com"
	if raw := compose(odd).raw; bytes.Contains(raw, []byte("Bcc:")) || bytes.Contains(raw, []byte("To:")) {
		t.Error("a user name with CRLF reached the header")
	}
}

// serveOne starts a notice session on loopback and returns a client for
// it. The server side greets with PREAUTH itself, as the proxy's tagged OK
// would have logged the client in.
func serveOne(t *testing.T, srv *Server, n Notice) (*imapclient.Client, chan error) {
	t.Helper()
	conn, server := testkit.TCPPair(t)
	server.SetDeadline(time.Time{}) // the notice session sets its own
	served := make(chan error, 1)
	go func() {
		server.Write([]byte("* PREAUTH [CAPABILITY " + strings.Join(Capabilities(), " ") + "] logged in\r\n"))
		served <- srv.Serve(server, nil, n)
	}()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	c := imapclient.New(conn, nil)
	t.Cleanup(func() { c.Close() })
	if err := c.WaitGreeting(); err != nil {
		t.Fatal(err)
	}
	return c, served
}

func TestMailboxThroughImapclient(t *testing.T) {
	srv := NewServer(Options{})
	defer srv.Close()
	n := sampleNotice("en")
	c, served := serveOne(t, srv, n)

	caps, err := c.Capability().Wait()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for cp := range caps {
		got = append(got, string(cp))
	}
	slices.Sort(got)
	want := Capabilities()
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("imapserver says %v, Capabilities() %v", got, want)
	}
	mboxes, err := c.List("", "*", nil).Collect()
	if err != nil || len(mboxes) != 1 || mboxes[0].Mailbox != "INBOX" {
		t.Fatalf("LIST: %v %v", mboxes, err)
	}
	st, err := c.Status("INBOX", &imap.StatusOptions{NumMessages: true, NumUnseen: true, UIDNext: true}).Wait()
	if err != nil || *st.NumMessages != 1 || *st.NumUnseen != 1 || st.UIDNext != 2 {
		t.Fatalf("STATUS: %+v %v", st, err)
	}
	sel, err := c.Select("INBOX", nil).Wait()
	if err != nil || sel.NumMessages != 1 || sel.UIDValidity == 0 || len(sel.PermanentFlags) != 0 {
		t.Fatalf("SELECT: %+v %v", sel, err)
	}
	msgs, err := c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{
		Envelope: true, Flags: true, UID: true, RFC822Size: true, BodyStructure: &imap.FetchItemBodyStructure{},
		BodySection: []*imap.FetchItemBodySection{{}},
	}).Collect()
	if err != nil || len(msgs) != 1 {
		t.Fatalf("FETCH: %v %v", msgs, err)
	}
	m := msgs[0]
	if m.UID != 1 || len(m.Flags) != 0 || m.Envelope.From[0].Addr() != "imapwhy@imapwhy.invalid" || m.Envelope.To[0].Addr() != "ann@example.com" {
		t.Errorf("FETCH data %+v", m)
	}
	if subj, _ := new(mime.WordDecoder).DecodeHeader(m.Envelope.Subject); subj != words["en"].subject {
		t.Errorf("envelope subject %q", m.Envelope.Subject)
	}
	if bs, ok := m.BodyStructure.(*imap.BodyStructureSinglePart); !ok || bs.MediaType() != "text/plain" {
		t.Errorf("BODYSTRUCTURE %#v", m.BodyStructure)
	}
	raw := m.FindBodySection(&imap.FetchItemBodySection{})
	if !bytes.Contains(raw, []byte("Subject: ")) || int64(len(raw)) != m.RFC822Size {
		t.Errorf("BODY[] %d bytes, RFC822.SIZE %d", len(raw), m.RFC822Size)
	}
	for _, tt := range []struct {
		crit *imap.SearchCriteria
		want int
	}{
		{&imap.SearchCriteria{}, 1},
		{&imap.SearchCriteria{NotFlag: []imap.Flag{imap.FlagSeen}}, 1},
		{&imap.SearchCriteria{Flag: []imap.Flag{imap.FlagSeen}}, 0},
		{&imap.SearchCriteria{Body: []string{"switched OFF"}}, 1},
		{&imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "From", Value: "imapwhy"}}}, 1},
		{&imap.SearchCriteria{Since: n.Time.Add(48 * time.Hour)}, 0},
		{&imap.SearchCriteria{UID: []imap.UIDSet{imap.UIDSetNum(2)}}, 0},
	} {
		data, err := c.UIDSearch(tt.crit, nil).Wait()
		if err != nil {
			t.Fatal(err)
		}
		if got := len(data.AllUIDs()); got != tt.want {
			t.Errorf("UID SEARCH %+v: %d results, want %d", tt.crit, got, tt.want)
		}
	}
	for name, err := range testkit.TryWrites(c) {
		var ierr *imap.Error
		if !asIMAPError(err, &ierr) || ierr.Type != imap.StatusResponseTypeNo || ierr.Code != imap.ResponseCodeCannot || !strings.Contains(ierr.Text, "read-only") {
			t.Errorf("%s: %v, want NO [CANNOT] ... read-only ...", name, err)
		}
	}
	if err := c.Subscribe("INBOX").Wait(); err != nil {
		t.Errorf("SUBSCRIBE INBOX: %v", err)
	}
	if _, err := c.Select("Sent", nil).Wait(); err == nil {
		t.Error("SELECT Sent worked")
	}
	idle, err := c.Idle()
	if err != nil {
		t.Fatal(err)
	}
	if err := idle.Close(); err != nil {
		t.Fatal(err)
	}
	if err := idle.Wait(); err != nil {
		t.Errorf("IDLE: %v", err)
	}
	if err := c.Logout().Wait(); err != nil {
		t.Errorf("LOGOUT: %v", err)
	}
	if err := testkit.Receive(t, served, 10*time.Second, "Serve's return after LOGOUT"); err != nil {
		t.Errorf("Serve: %v", err)
	}
}

func asIMAPError(err error, target **imap.Error) bool {
	e, ok := err.(*imap.Error)
	if ok {
		*target = e
	}
	return ok
}

func TestMaxSessionAndClose(t *testing.T) {
	srv := NewServer(Options{MaxSession: 200 * time.Millisecond})
	c, served := serveOne(t, srv, sampleNotice("ja"))
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := testkit.Receive(t, served, 10*time.Second, "the session's end at MaxSession"); err != nil {
		t.Errorf("Serve: %v", err)
	}
	testkit.Receive(t, c.Closed(), 10*time.Second, "the client's disconnection")

	c2, served2 := serveOne(t, srv, sampleNotice("en"))
	if err := c2.Noop().Wait(); err != nil {
		t.Fatal(err)
	}
	srv.Close()
	testkit.Receive(t, served2, 10*time.Second, "Close to end the session")
	if err := srv.Serve(nopConn{}, nil, sampleNotice("en")); err != ErrClosed {
		t.Errorf("Serve after Close: %v", err)
	}
}

// nopConn is a net.Conn that is never read or written.
type nopConn struct{ net.Conn }

func (nopConn) SetDeadline(time.Time) error { return nil }
func (nopConn) Close() error                { return nil }

func TestFirstSeenKeepsTheMessageStable(t *testing.T) {
	f := newFirstSeen()
	n := sampleNotice("en")
	t0 := n.Time
	n.Time = t0.Add(15 * time.Minute)
	if got := f.first(n); !got.Equal(n.Time) {
		t.Fatalf("first sight: %v", got)
	}
	n.Time = t0.Add(30 * time.Minute)
	if got := f.first(n); !got.Equal(t0.Add(15 * time.Minute)) {
		t.Errorf("second sight: %v, want the first time", got)
	}
	n.Time = t0.Add(15*time.Minute + firstSeenTTL)
	if got := f.first(n); !got.Equal(n.Time) {
		t.Errorf("after the TTL: %v, want now", got)
	}
	other := n
	other.Cause = diagnose.CauseAccountLocked
	if got := f.first(other); !got.Equal(other.Time) {
		t.Errorf("another notice: %v", got)
	}
}
