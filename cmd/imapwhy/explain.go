package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/imapwhy/imapwhy/diagnose"
)

const explainUsage = `Usage: imapwhy explain [--server HOST] [--user NAME] [--lang ja|en] [--json] [FILE]

Explains why a mail server refused a login, from what the server sent.
FILE (or standard input, or "-") holds the server's lines as on the wire:
"* OK ..." greeting, "* CAPABILITY ...", "a1 NO [CODE] text"; lines starting
"C: " are the client's, lines in parentheses are notes. A line without a tag,
such as "LOGIN failed.", is taken as the server's answer.

Exit status: 0 when a failure was diagnosed, 3 when the transcript shows
a successful login (nothing to explain), 2 for usage and input errors.

Options:
`

// explainResult is the --json output: one object.
type explainResult struct {
	Cause        string `json:"cause"`
	Code         string `json:"code"`
	Confidence   string `json:"confidence"`
	Temporary    bool   `json:"temporary"`
	Provider     string `json:"provider"`
	ProviderName string `json:"provider_name"`
	Alternative  string `json:"alternative"`
	HelpURL      string `json:"help_url"`
	Message      string `json:"message"`
	Detail       string `json:"detail"`
	// OAuth is what an XOAUTH2 or OAUTHBEARER exchange showed; never the token.
	OAuth *explainOAuth `json:"oauth,omitempty"`
	// LoginSucceeded: the transcript shows a successful login; cause and
	// code are empty.
	LoginSucceeded bool `json:"login_succeeded"`
}

// explainOAuth is the token's description and the decoded error challenge.
type explainOAuth struct {
	Mechanism string               `json:"mechanism,omitempty"`
	User      string               `json:"user,omitempty"`
	Token     string               `json:"token"`
	Audiences []string             `json:"audiences,omitempty"`
	Scopes    []string             `json:"scopes,omitempty"`
	Roles     []string             `json:"roles,omitempty"`
	Expires   string               `json:"expires,omitempty"`
	Tenant    string               `json:"tenant,omitempty"`
	Challenge *diagnose.OAuthError `json:"challenge,omitempty"`
}

func newExplainOAuth(o *diagnose.OAuth) *explainOAuth {
	if o == nil {
		return nil
	}
	e := &explainOAuth{
		Mechanism: o.Mechanism, User: o.User, Token: o.Token.Summary(o.At),
		Audiences: o.Token.Audiences, Scopes: o.Token.Scopes, Roles: o.Token.Roles,
		Tenant: o.Token.Tenant, Challenge: o.Challenge,
	}
	if !o.Token.Expires.IsZero() {
		e.Expires = o.Token.Expires.UTC().Format(time.RFC3339)
	}
	return e
}

// Exit statuses of explain.
const (
	explainDiagnosed = 0
	explainBadInput  = 2
	explainSucceeded = 3 // the transcript shows a successful login
)

// loginSucceededMessage says that a transcript shows no failure.
var loginSucceededMessage = map[string]string{
	"en": "The login succeeded: the server accepted the user name and password. There is no failure to explain.",
	"ja": "ログインは成功しています。サーバーはユーザー名とパスワードを受け付けました。説明すべき失敗はありません。",
}

// errUsageShown: the error and the usage are already on stderr.
var errUsageShown = errors.New("usage shown")

// explainOptions are the parsed command line.
type explainOptions struct {
	server string
	user   string
	lang   string
	json   bool
	file   string // "" or "-": standard input
}

// runExplain implements `imapwhy explain`. It returns the exit status: 0
// when a diagnosis was made, 3 when the transcript shows a successful
// login, 2 for usage and input errors.
func runExplain(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	opts, err := parseExplainArgs(args, stderr)
	if status, stop := parseFailed(err, "explain", explainBadInput, stderr); stop {
		return status
	}
	obs, err := readObservation(opts, stdin)
	if err != nil {
		fmt.Fprintf(stderr, "imapwhy explain: %v\n", err)
		return explainBadInput
	}
	if obs.LoginSucceeded {
		if err := writeLoginSucceeded(stdout, opts); err != nil {
			fmt.Fprintf(stderr, "imapwhy explain: write output: %v\n", err)
			return explainBadInput
		}
		return explainSucceeded
	}
	if obs.OAuth != nil {
		// A token's expiry is judged against now.
		obs.OAuth.At = time.Now()
	}
	d := diagnose.Classify(obs)
	msg := diagnose.Message(d, opts.lang)
	if opts.json {
		err = writeExplainJSON(stdout, d, msg, newExplainOAuth(obs.OAuth))
	} else {
		// A mail app's own text (no status word) is no quote of the server.
		saidBy := "server said"
		if obs.Reply != nil && obs.Reply.FromApp {
			saidBy = "detail"
		}
		err = writeExplainText(stdout, d, msg, saidBy, newExplainOAuth(obs.OAuth))
	}
	if err != nil {
		fmt.Fprintf(stderr, "imapwhy explain: write output: %v\n", err)
		return explainBadInput
	}
	return explainDiagnosed
}

// parseExplainArgs parses flags and at most one FILE, in any order.
func parseExplainArgs(args []string, stderr io.Writer) (explainOptions, error) {
	var o explainOptions
	fs := newFlagSet("imapwhy explain", explainUsage, stderr)
	fs.StringVar(&o.server, "server", "", "the IMAP `HOST` the mail app used (identifies the provider)")
	fs.StringVar(&o.user, "user", "", "the user `NAME` the mail app used (only facts about the name are used)")
	fs.StringVar(&o.lang, "lang", "en", "language of the message: ja or en")
	fs.BoolVar(&o.json, "json", false, "print one JSON object")
	files, err := parseInterspersed(fs, args)
	if err != nil {
		return o, err
	}
	if len(files) > 1 {
		return o, fmt.Errorf("one FILE at most, got %d", len(files))
	}
	if len(files) == 1 {
		o.file = files[0]
	}
	if o.lang != "ja" && o.lang != "en" {
		return o, fmt.Errorf("--lang %q: want ja or en", o.lang)
	}
	return o, nil
}

// readObservation reads the transcript and applies --server and --user.
func readObservation(o explainOptions, stdin io.Reader) (diagnose.Observation, error) {
	in, name := stdin, "standard input"
	if o.file != "" && o.file != "-" {
		f, err := os.Open(o.file)
		if err != nil {
			return diagnose.Observation{}, err
		}
		defer f.Close()
		in, name = f, o.file
	}
	obs, err := diagnose.ParseTranscript(in)
	if err != nil {
		return obs, fmt.Errorf("%s: %w", name, err)
	}
	if o.server != "" {
		host, port, err := splitServer(o.server)
		if err != nil {
			return obs, err
		}
		obs.Host, obs.Port = host, port
	}
	if o.user != "" {
		obs.Typed = withUserFacts(obs.Typed, o.user)
	}
	return obs, nil
}

// splitServer accepts HOST or HOST:PORT.
func splitServer(s string) (string, int, error) {
	host, portText, err := net.SplitHostPort(s)
	if err != nil {
		// No port (or a bare IPv6 address).
		return strings.Trim(s, "[]"), 0, nil
	}
	port, err := strconv.Atoi(portText)
	if err != nil || port < 1 || port > 65535 {
		return "", 0, fmt.Errorf("--server %q: bad port", s)
	}
	return host, port, nil
}

// withUserFacts replaces the user-name facts with those of --user. Facts
// about the password stay as the transcript gave them: --user gives none.
func withUserFacts(t diagnose.Typed, user string) diagnose.Typed {
	u := diagnose.Facts(user, "")
	t.Username = u.Username
	t.UserHasDomain = u.UserHasDomain
	t.UserSurroundingSpace = u.UserSurroundingSpace
	t.UserFullwidth = u.UserFullwidth
	return t
}

func writeExplainJSON(w io.Writer, d diagnose.Diagnosis, msg string, oauth *explainOAuth) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false) // help URLs carry '&'
	enc.SetIndent("", "  ")
	return enc.Encode(explainResult{
		Cause:        string(d.Cause),
		Code:         d.Code,
		Confidence:   string(d.Confidence),
		Temporary:    d.Temporary,
		Provider:     d.Provider,
		ProviderName: d.ProviderName,
		Alternative:  string(d.Alternative),
		HelpURL:      d.HelpURL,
		Message:      msg,
		Detail:       d.Detail,
		OAuth:        oauth,
	})
}

// writeLoginSucceeded reports a transcript without a failure.
func writeLoginSucceeded(w io.Writer, o explainOptions) error {
	msg := loginSucceededMessage[o.lang]
	if o.json {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(explainResult{LoginSucceeded: true, Message: msg})
	}
	_, err := fmt.Fprintf(w, "%-12s %s\n%-12s %s\n", "result:", "login succeeded", "message:", msg)
	return err
}

// writeExplainText prints the diagnosis; saidBy labels its Detail.
func writeExplainText(w io.Writer, d diagnose.Diagnosis, msg, saidBy string, oauth *explainOAuth) error {
	var b strings.Builder
	line := func(label, value string) {
		if value != "" {
			fmt.Fprintf(&b, "%-12s %s\n", label+":", value)
		}
	}
	line("cause", string(d.Cause))
	line("confidence", string(d.Confidence))
	line("also likely", string(d.Alternative))
	if d.ProviderName != "" {
		line("provider", d.ProviderName+" ("+d.Provider+")")
	}
	temporary := "no"
	if d.Temporary {
		temporary = "yes"
	}
	line("code", d.Code+" (temporary: "+temporary+")")
	line("message", msg)
	line(saidBy, d.Detail)
	if oauth != nil {
		line("token", oauth.Token)
		if c := oauth.Challenge; c != nil {
			b, _ := json.Marshal(c)
			line("challenge", string(b))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
