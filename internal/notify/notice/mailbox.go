package notice

import (
	"bytes"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
)

// inbox is the only mailbox, and delim its hierarchy delimiter.
const (
	inbox = "INBOX"
	delim = '/'
)

// The one message's numbers.
const (
	msgSeq = 1
	msgUID = imap.UID(1)
)

// mailboxFlags are the flags the mailbox knows; none can be set.
var mailboxFlags = []imap.Flag{imap.FlagSeen, imap.FlagAnswered, imap.FlagFlagged, imap.FlagDeleted, imap.FlagDraft}

// session is one connection's view of the notice mailbox. It implements
// imapserver.Session (and NAMESPACE and MOVE, to refuse MOVE clearly).
// Nothing in it changes: the message is never marked seen, nothing is
// stored, so there is nothing to synchronise between sessions.
type session struct {
	msg      *message
	refusal  string // the text of NO [CANNOT], in the notice's language
	selected bool
}

var (
	_ imapserver.SessionNamespace = (*session)(nil)
	_ imapserver.SessionMove      = (*session)(nil)
)

// refusals say why a write is refused, per language.
var refusals = map[string]string{
	"en": "This is imapwhy's read-only notice mailbox: nothing can be changed here. Read the message in INBOX; your real mailbox comes back once the problem is fixed.",
	"ja": "ここは imapwhy の読み取り専用のお知らせメールボックスです。変更はできません。INBOXのメッセージをお読みください。問題が解決すれば本来のメールボックスに戻ります。",
}

func newSession(msg *message, lang string) *session {
	r, ok := refusals[lang]
	if !ok {
		r = refusals["en"]
	}
	return &session{msg: msg, refusal: r}
}

// refuse is the answer to every write.
func (s *session) refuse() error {
	return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot, Text: s.refusal}
}

func noSuchMailbox() error {
	return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeNonExistent, Text: "No such mailbox: only INBOX exists here"}
}

func isInbox(name string) bool { return strings.EqualFold(name, inbox) }

func (s *session) Close() error { return nil }

// Login is never called: sessions start logged in (PREAUTH).
func (s *session) Login(string, string) error { return imapserver.ErrAuthFailed }

func (s *session) Select(name string, _ *imap.SelectOptions) (*imap.SelectData, error) {
	if !isInbox(name) {
		return nil, noSuchMailbox()
	}
	s.selected = true
	return &imap.SelectData{
		Flags:             mailboxFlags,
		PermanentFlags:    []imap.Flag{}, // nothing can be stored
		NumMessages:       1,
		FirstUnseenSeqNum: msgSeq,
		UIDNext:           msgUID + 1,
		UIDValidity:       s.msg.uidValidity,
	}, nil
}

func (s *session) Unselect() error {
	s.selected = false
	return nil
}

func (s *session) Create(string, *imap.CreateOptions) error         { return s.refuse() }
func (s *session) Delete(string) error                              { return s.refuse() }
func (s *session) Rename(string, string, *imap.RenameOptions) error { return s.refuse() }

func (s *session) Append(string, imap.LiteralReader, *imap.AppendOptions) (*imap.AppendData, error) {
	return nil, s.refuse() // imapserver discards the literal
}

func (s *session) Expunge(*imapserver.ExpungeWriter, *imap.UIDSet) error { return s.refuse() }

func (s *session) Store(*imapserver.FetchWriter, imap.NumSet, *imap.StoreFlags, *imap.StoreOptions) error {
	return s.refuse()
}

func (s *session) Copy(imap.NumSet, string) (*imap.CopyData, error) { return nil, s.refuse() }

func (s *session) Move(*imapserver.MoveWriter, imap.NumSet, string) error { return s.refuse() }

// Subscribe and Unsubscribe are accepted for INBOX (apps subscribe while
// setting up) and change nothing.
func (s *session) Subscribe(name string) error {
	if !isInbox(name) {
		return noSuchMailbox()
	}
	return nil
}

func (s *session) Unsubscribe(name string) error { return s.Subscribe(name) }

func (s *session) Namespace() (*imap.NamespaceData, error) {
	return &imap.NamespaceData{Personal: []imap.NamespaceDescriptor{{Prefix: "", Delim: delim}}}, nil
}

func (s *session) List(w *imapserver.ListWriter, ref string, patterns []string, options *imap.ListOptions) error {
	if len(patterns) == 0 {
		// LIST "" "": the hierarchy delimiter (RFC 9051 §6.3.9).
		return w.WriteList(&imap.ListData{Attrs: []imap.MailboxAttr{imap.MailboxAttrNoSelect}, Delim: delim})
	}
	for _, p := range patterns {
		if !imapserver.MatchList(inbox, delim, ref, p) {
			continue
		}
		data := &imap.ListData{Attrs: []imap.MailboxAttr{imap.MailboxAttrHasNoChildren}, Delim: delim, Mailbox: inbox}
		if options != nil && options.ReturnSubscribed {
			data.Attrs = append(data.Attrs, imap.MailboxAttrSubscribed)
		}
		if options != nil && options.ReturnStatus != nil {
			data.Status = s.status(options.ReturnStatus)
		}
		return w.WriteList(data)
	}
	return nil
}

func (s *session) Status(name string, options *imap.StatusOptions) (*imap.StatusData, error) {
	if !isInbox(name) {
		return nil, noSuchMailbox()
	}
	return s.status(options), nil
}

func (s *session) status(o *imap.StatusOptions) *imap.StatusData {
	one, zero := uint32(1), uint32(0)
	size := int64(len(s.msg.raw))
	d := &imap.StatusData{Mailbox: inbox}
	if o.NumMessages {
		d.NumMessages = &one
	}
	if o.NumRecent {
		d.NumRecent = &zero
	}
	if o.UIDNext {
		d.UIDNext = msgUID + 1
	}
	if o.UIDValidity {
		d.UIDValidity = s.msg.uidValidity
	}
	if o.NumUnseen {
		d.NumUnseen = &one
	}
	if o.NumDeleted {
		d.NumDeleted = &zero
	}
	if o.Size {
		d.Size = &size
	}
	return d
}

// Poll and Idle: nothing ever changes here.
func (s *session) Poll(*imapserver.UpdateWriter, bool) error { return nil }

func (s *session) Idle(_ *imapserver.UpdateWriter, stop <-chan struct{}) error {
	<-stop
	return nil
}

func (s *session) Fetch(w *imapserver.FetchWriter, numSet imap.NumSet, options *imap.FetchOptions) error {
	if !containsMessage(numSet) {
		return nil
	}
	m := s.msg
	rw := w.CreateMessage(msgSeq)
	rw.WriteUID(msgUID)
	if options.Flags {
		rw.WriteFlags([]imap.Flag{})
	}
	if options.InternalDate {
		rw.WriteInternalDate(m.date)
	}
	if options.RFC822Size {
		rw.WriteRFC822Size(int64(len(m.raw)))
	}
	if options.Envelope {
		rw.WriteEnvelope(m.envelope())
	}
	if options.BodyStructure != nil {
		rw.WriteBodyStructure(imapserver.ExtractBodyStructure(bytes.NewReader(m.raw)))
	}
	for _, bs := range options.BodySection {
		buf := imapserver.ExtractBodySection(bytes.NewReader(m.raw), bs)
		if err := writeAll(rw.WriteBodySection(bs, int64(len(buf))), buf); err != nil {
			return err
		}
	}
	for _, bs := range options.BinarySection {
		buf := imapserver.ExtractBinarySection(bytes.NewReader(m.raw), bs)
		wc := rw.WriteBinarySection(bs, int64(len(buf)))
		if err := writeAll(wc, buf); err != nil {
			return err
		}
	}
	for _, bss := range options.BinarySectionSize {
		rw.WriteBinarySectionSize(bss, imapserver.ExtractBinarySectionSize(bytes.NewReader(m.raw), bss))
	}
	return rw.Close()
}

func (s *session) Search(kind imapserver.NumKind, criteria *imap.SearchCriteria, _ *imap.SearchOptions) (*imap.SearchData, error) {
	d := &imap.SearchData{}
	if !s.msg.matches(criteria) {
		if kind == imapserver.NumKindUID {
			d.All = imap.UIDSet{}
		} else {
			d.All = imap.SeqSet{}
		}
		return d, nil
	}
	d.Count = 1
	if kind == imapserver.NumKindUID {
		d.All, d.Min, d.Max = imap.UIDSetNum(msgUID), uint32(msgUID), uint32(msgUID)
	} else {
		d.All, d.Min, d.Max = imap.SeqSetNum(msgSeq), msgSeq, msgSeq
	}
	return d, nil
}

// envelope is the ENVELOPE of the message: header values as they are in
// the header (Subject with its encoded-words), as servers send them.
func (m *message) envelope() *imap.Envelope {
	from := []imap.Address{{Name: fromName, Mailbox: fromMailbox, Host: fromHost}}
	e := &imap.Envelope{
		Date:      m.date,
		Subject:   m.subject,
		From:      from,
		Sender:    from,
		ReplyTo:   from,
		MessageID: strings.Trim(m.headers["message-id"], "<>"),
	}
	if m.to != nil {
		e.To = []imap.Address{{Mailbox: m.to[0], Host: m.to[1]}}
	}
	return e
}
