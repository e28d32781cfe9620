package notice

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"regexp"
	"strings"
	"time"

	"github.com/imapwhy/imapwhy/diagnose"
)

// Notice is what the one message of a notice mailbox says.
type Notice struct {
	User         string // the user name as typed; the To header when it is an address
	Lang         string // "ja" or "en"
	Message      string // the diagnosed message, exactly as the NO would have said it
	Cause        diagnose.Cause
	Temporary    bool
	Steps        []string  // general steps for the cause (incident.Steps)
	ProviderName string    // "" if unknown
	HelpURL      string    // the provider's help page for the fix, "" if none
	Time         time.Time // when the failure was seen: the Date header
}

// message is a composed notice: the RFC 5322 bytes and what IMAP needs
// about them without parsing them again.
type message struct {
	raw         []byte
	date        time.Time
	subject     string // as in the header (MIME encoded-words)
	text        string // the decoded body, for SEARCH BODY/TEXT
	headers     map[string]string
	to          []string // mailbox, host of the To address, or nil
	uidValidity uint32
}

// From is the sender of every notice.
const (
	fromName    = "imapwhy"
	fromMailbox = "imapwhy"
	fromHost    = "imapwhy.invalid" // RFC 2606: never a real domain
)

// words are the fixed texts of the message, per language.
var words = map[string]struct {
	subject, lead, happened, steps, help, helpOf, temporary, about, cause string
}{
	"en": {
		subject:   "Why your mail app cannot get your mail",
		lead:      "Your mail app could not sign in to your mailbox, and typing the password again will not fix it. This message explains why and what to do.",
		happened:  "What happened",
		steps:     "What to do",
		help:      "Help page",
		helpOf:    "Help page of %s",
		temporary: "This is temporary: trying again later can help.",
		about:     "About this message: imapwhy, the mail proxy your mail app connects through, let the app into this read-only notice mailbox so that it stops asking for the password. Your real mailbox was not touched, and nothing done here is saved. At every sign-in imapwhy tries the real server first: once the problem is fixed, your mail comes back by itself (pull down to refresh, or restart the app).",
		cause:     "Cause",
	},
	"ja": {
		subject:   "メールを受信できない理由",
		lead:      "メールアプリがメールボックスにログインできませんでした。パスワードを入力し直しても解決しません。理由と対処方法をお知らせします。",
		happened:  "起きたこと",
		steps:     "対処方法",
		help:      "ヘルプページ",
		helpOf:    "%s のヘルプページ",
		temporary: "一時的な問題です。しばらくしてから試すと解決することがあります。",
		about:     "このメッセージについて: メールアプリが経由しているメールプロキシ imapwhy が、パスワードを何度も求められないよう、アプリをこの読み取り専用のお知らせメールボックスに接続させています。本来のメールボックスには何も変更しておらず、ここでの操作は保存されません。imapwhy はログインのたびに本来のサーバーを先に試します。問題が解決すれば、メールは自動的に戻ります（画面を下に引いて更新するか、アプリを再起動してください）。",
		cause:     "原因",
	},
}

// addressRE is a plain email address, safe in a header: no spaces,
// quotes, angle brackets or control characters.
var addressRE = regexp.MustCompile(`^([A-Za-z0-9.!#$%&'*+/=?^_{|}~-]{1,64})@([A-Za-z0-9.-]{1,253})$`)

// compose builds the message: text/plain in UTF-8, quoted-printable, with
// Date, From imapwhy, To (the user, when it is a plain address), Subject,
// Message-ID and Auto-Submitted. The UIDVALIDITY is derived from the
// bytes, so that a different message never reuses a UIDVALIDITY/UID pair
// (RFC 9051 §2.3.1.1) while the same notice shown again keeps it.
func compose(n Notice) *message {
	lang := n.Lang
	if _, ok := words[lang]; !ok {
		lang = "en"
	}
	w := words[lang]
	date := n.Time.UTC().Truncate(time.Second)
	if n.Time.IsZero() {
		date = time.Unix(0, 0).UTC()
	}
	m := &message{date: date, subject: mime.QEncoding.Encode("utf-8", w.subject), headers: map[string]string{}}

	var body strings.Builder
	para := func(s string) { body.WriteString(s + "\n\n") }
	para(w.lead)
	para(w.happened + ":\n" + clean(n.Message))
	if n.Temporary {
		para(w.temporary)
	}
	if len(n.Steps) > 0 {
		var s strings.Builder
		s.WriteString(w.steps + ":")
		for i, st := range n.Steps {
			fmt.Fprintf(&s, "\n%d. %s", i+1, clean(st))
		}
		para(s.String())
	}
	if u := cleanURL(n.HelpURL); u != "" {
		label := w.help
		if name := clean(n.ProviderName); name != "" {
			label = fmt.Sprintf(w.helpOf, name)
		}
		para(label + ":\n" + u)
	}
	para(w.about)
	body.WriteString(w.cause + ": " + string(n.Cause) + "\n")
	m.text = body.String()

	var h bytes.Buffer
	header := func(name, value string) {
		h.WriteString(name + ": " + value + "\r\n")
		m.headers[strings.ToLower(name)] = value
	}
	header("Date", date.Format(time.RFC1123Z))
	header("From", fromName+" <"+fromMailbox+"@"+fromHost+">")
	if sub := addressRE.FindStringSubmatch(strings.TrimSpace(n.User)); sub != nil {
		header("To", "<"+sub[0]+">")
		m.to = []string{sub[1], sub[2]}
	}
	header("Subject", m.subject)
	header("MIME-Version", "1.0")
	header("Content-Type", "text/plain; charset=utf-8")
	header("Content-Transfer-Encoding", "quoted-printable")
	header("Content-Language", lang)
	header("Auto-Submitted", "auto-generated")

	var qp bytes.Buffer
	qw := quotedprintable.NewWriter(&qp)
	qw.Write([]byte(strings.ReplaceAll(m.text, "\n", "\r\n")))
	qw.Close()

	sum := sha256.Sum256(append(h.Bytes(), qp.Bytes()...))
	m.uidValidity = binary.BigEndian.Uint32(sum[:4])&0x7fffffff | 1 // never 0
	id := "<" + hex.EncodeToString(sum[4:16]) + "@" + fromHost + ">"
	header("Message-ID", id)

	h.WriteString("\r\n")
	h.Write(qp.Bytes())
	m.raw = h.Bytes()
	return m
}

// clean makes s one line of plain text.
func clean(s string) string {
	return strings.Join(strings.Fields(strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)), " ")
}

// cleanURL lets only a plain https URL through.
func cleanURL(u string) string {
	if strings.HasPrefix(u, "https://") && !strings.ContainsFunc(u, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return u
	}
	return ""
}
