package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"
	"github.com/rs/zerolog"

	"github.com/imapwhy/imapwhy/internal/certs"
	"github.com/imapwhy/imapwhy/internal/config"
	"github.com/imapwhy/imapwhy/internal/imitate"
	"github.com/imapwhy/imapwhy/internal/notify"
	"github.com/imapwhy/imapwhy/internal/oauthsasl"
	"github.com/imapwhy/imapwhy/proxy"
)

// Bounds of the demo's own steps.
const (
	demoLoginTimeout = 15 * time.Second // one scripted login, start to end
	demoDrainTimeout = 5 * time.Second  // shutdown of the proxy
	demoDefaultBase  = "127.0.0.1:10993"
)

const demoUsage = "Usage: imapwhy demo [--lang ja|en] [--listen ADDR] [--once] [--state-dir DIR]\n\n" +
	"Runs imitations of mail providers on this PC with imapwhy in front, and shows what\n" +
	"a mail app says for each failure and what imapwhy says instead. Offline.\n\nOptions:\n"

// runDemo runs `imapwhy demo`: provider imitations on loopback, the proxy
// in front of them (one listener per provider), every scenario logged in
// through the proxy and printed as "before" (what the provider said, which a
// mail app shows) and "now" (what imapwhy says instead). Then, unless
// --once, it keeps serving until SIGINT or SIGTERM.
func runDemo(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("imapwhy demo", demoUsage, stderr)
	lang := fs.String("lang", demoDefaultLanguage(), "language of imapwhy's messages: ja or en")
	listen := fs.String("listen", demoDefaultBase, "address of the first listener; the next providers get the next ports (port 0: any free ports)")
	once := fs.Bool("once", false, "print the scenarios and exit")
	stateDir := fs.String("state-dir", "", "keep the demo's certificates here, to trust its CA once (default: a temporary directory, removed on exit)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "imapwhy demo: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if *lang != "ja" && *lang != "en" {
		fmt.Fprintf(stderr, "imapwhy demo: --lang %q is not ja or en\n", *lang)
		return 2
	}
	providers := imitate.Providers()
	where, err := parseDemoListen(*listen, len(providers))
	if err != nil {
		fmt.Fprintf(stderr, "imapwhy demo: --listen: %v\n", err)
		return 2
	}
	explicit := false
	fs.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "listen" })
	moved := ""
	if !explicit && !where.free(len(providers)) {
		// The default ports are taken (another demo, another program):
		// any free ones will do. Asked-for ports are not moved.
		moved, where.port = strconv.Itoa(where.port), 0
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	d, err := startDemo(ctx, providers, where, *lang, *stateDir, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "imapwhy demo: %v\n", err)
		return 1
	}
	defer d.close()
	d.movedFrom = moved

	if d.movedFrom != "" {
		fmt.Fprintf(stdout, "imapwhy demo: "+demoTexts[*lang].moved+"\n", d.movedFrom)
	}
	d.printScenarios(stdout)
	d.printChannels(stdout)
	if *once {
		return 0
	}
	d.printHowTo(stdout)
	d.logs.open.Store(true)
	<-ctx.Done()
	stop() // a second signal kills the process
	fmt.Fprintln(stdout, "imapwhy demo: shutting down")
	return 0
}

// demo is the running set: imitations, the proxy's certificate and the
// proxy.
type demo struct {
	lang       string
	providers  []imitate.Provider
	imitations []*imitate.Server
	stateDir   string // the proxy's certificates
	tempDir    string // stateDir when the demo made it; removed by close
	certs      *certs.Manager
	proxy      *daemon        // the proxy and its refusal hook
	addrs      []net.Addr     // proxy listeners, one per provider
	roots      *x509.CertPool // trusts the proxy's local CA
	logs       *demoLogGate
	// upstreamRoots trust the imitations; channels is the second proxy
	// showing the incident page, the shield and the notice mailbox.
	upstreamRoots *x509.CertPool
	channels      *demoChannels
	// movedFrom is the default first port when it was taken and free
	// ports were used instead.
	movedFrom string
}

// startDemo starts everything; on error it stops what it started. An
// empty stateDir means a temporary one, removed by close.
func startDemo(ctx context.Context, providers []imitate.Provider, where demoListen, lang, stateDir string, stderr io.Writer) (*demo, error) {
	d := &demo{lang: lang, providers: providers, stateDir: stateDir, logs: &demoLogGate{w: stderr}}
	if err := d.start(ctx, where, stderr); err != nil {
		d.close()
		return nil, err
	}
	return d, nil
}

func (d *demo) start(ctx context.Context, where demoListen, stderr io.Writer) error {
	ca, err := imitate.NewCA()
	if err != nil {
		return err
	}
	for _, p := range d.providers {
		srv, err := imitate.Start(p, imitate.Options{CA: ca})
		if err != nil {
			return fmt.Errorf("imitation of %s: %w", p.Name, err)
		}
		d.imitations = append(d.imitations, srv)
	}
	// By default a throwaway state directory: the demo's local CA must
	// not replace the one `imapwhy serve` made and a phone may trust.
	if d.stateDir == "" {
		if d.tempDir, err = os.MkdirTemp("", "imapwhy-demo-"); err != nil {
			return err
		}
		d.stateDir = d.tempDir
	}
	log := demoLogger(d.logs, stderr)
	if d.certs, err = certs.New(ctx, config.TLS{}, d.stateDir, log); err != nil {
		return err
	}
	if d.roots, err = demoLoadRoots(d.certs.CAFile()); err != nil {
		return err
	}
	// Picked after the imitations listen, so that port 0 cannot hand
	// the proxy a port an imitation took meanwhile.
	addrs, err := where.addrs(len(d.imitations))
	if err != nil {
		return err
	}
	d.upstreamRoots = ca.Pool()
	p, err := newDaemon(d.proxyConfig(addrs), proxy.Options{Logger: log, TLS: d.certs.TLSConfig(), UpstreamRoots: d.upstreamRoots},
		notify.Options{Logger: log, TLS: d.certs.TLSConfig()}, nil)
	if err != nil {
		return err
	}
	if err := p.start(); err != nil {
		return err
	}
	d.proxy = p
	d.addrs = p.proxy.Addrs()
	return d.startChannels(ctx, where.host)
}

// proxyConfig puts one implicit-TLS listener in front of each imitation;
// the upstream is verified for the provider's real host name.
func (d *demo) proxyConfig(addrs []string) config.Config {
	cfg := config.Default()
	cfg.StateDir = d.stateDir
	cfg.Listeners = nil
	// The demo fails many logins from this one address on purpose: no
	// failure delay, no rate limit, and no shield holding back its repeats.
	cfg.Limits.FailureDelayBase = config.Duration(time.Millisecond)
	cfg.Limits.FailureDelayMax = config.Duration(time.Millisecond)
	cfg.Limits.PerAddressLoginsPerMinute = config.Unlimited
	cfg.Limits.PerUserLoginsPerMinute = config.Unlimited
	for i, srv := range d.imitations {
		cfg.Listeners = append(cfg.Listeners, config.Listener{
			Address:  addrs[i],
			TLS:      config.TLSImplicit,
			Language: d.lang,
			Upstream: config.Upstream{
				Address:    srv.Addr(),
				TLS:        config.TLSImplicit,
				ServerName: d.providers[i].Host,
			},
		})
	}
	return cfg
}

// close stops everything that was started, the proxy first so that its
// sessions end before their upstreams do.
func (d *demo) close() {
	d.channels.close()
	if d.proxy != nil {
		ctx, cancel := context.WithTimeout(context.Background(), demoDrainTimeout)
		d.proxy.shutdown(ctx)
		cancel()
	}
	for _, srv := range d.imitations {
		srv.Close()
	}
	if d.certs != nil {
		d.certs.Close()
	}
	if d.tempDir != "" {
		os.RemoveAll(d.tempDir)
	}
}

// demoOutcome is what a mail app saw when logging in through the proxy.
type demoOutcome struct {
	ok       bool
	code     string // response code of the NO, "" if none
	text     string // text of the NO
	messages uint32 // after a successful login: messages in INBOX
	subject  string // and the subject of the first one
	link     string // the incident page the answer linked to, "" if none
	err      error  // the login could not be tried at all
}

// login logs in through the proxy listener for provider i with s's
// credentials, as a mail app would, and on success reads INBOX.
func (d *demo) login(i int, s imitate.Scenario) demoOutcome {
	return d.loginAt(demoDialAddr(d.addrs[i]), s)
}

// loginAt logs in through the proxy listener at addr.
func (d *demo) loginAt(addr string, s imitate.Scenario) demoOutcome {
	dialer := &net.Dialer{Timeout: demoLoginTimeout}
	host, _, _ := net.SplitHostPort(addr)
	conn, err := tls.DialWithDialer(dialer, "tcp", addr, &tls.Config{RootCAs: d.roots, ServerName: host})
	if err != nil {
		return demoOutcome{err: err}
	}
	conn.SetDeadline(time.Now().Add(demoLoginTimeout))
	var nc net.Conn = conn
	if d.lang != "en" {
		// imapwhy writes Japanese only to a client that asked for it.
		if nc, err = askLanguage(conn, d.lang); err != nil {
			conn.Close()
			return demoOutcome{err: err}
		}
	}
	// The client library keeps ALERTs to itself: the incident link is
	// read from the server's side of the transcript.
	said := &demoServerLines{}
	c := imapclient.New(nc, &imapclient.Options{DebugWriter: said})
	defer c.Close()
	switch s.Command() {
	case "PLAIN":
		err = c.Authenticate(sasl.NewPlainClient("", s.User, s.Password))
	case "XOAUTH2":
		err = c.Authenticate(oauthsasl.Client{User: s.User, Token: s.Password})
	default:
		err = c.Login(s.User, s.Password).Wait()
	}
	var ie *imap.Error
	if errors.As(err, &ie) {
		return demoOutcome{code: string(ie.Code), text: ie.Text, link: incidentLinkRE.FindString(said.String())}
	}
	if err != nil {
		return demoOutcome{err: err}
	}
	o := demoOutcome{ok: true}
	sel, err := c.Select("INBOX", nil).Wait()
	if err != nil {
		return demoOutcome{err: fmt.Errorf("logged in, but SELECT failed: %w", err)}
	}
	o.messages = sel.NumMessages
	if msgs, err := c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{Envelope: true}).Collect(); err == nil && len(msgs) == 1 && msgs[0].Envelope != nil {
		o.subject = msgs[0].Envelope.Subject
	}
	c.Logout().Wait()
	return o
}

// demoServerLines collects the transcript of one login (it holds the
// password the demo itself typed, and is dropped with the login).
type demoServerLines struct{ strings.Builder }

// askLanguage sends LANGUAGE (RFC 5255) before the client library takes
// the connection over: it returns a connection that replays the greeting.
func askLanguage(conn net.Conn, lang string) (net.Conn, error) {
	br := bufio.NewReader(conn)
	greeting, err := br.ReadString('\n')
	if err != nil {
		return nil, fmt.Errorf("reading the greeting: %w", err)
	}
	if _, err := fmt.Fprintf(conn, "l0 LANGUAGE %s\r\n", strings.ToUpper(lang)); err != nil {
		return nil, err
	}
	for {
		l, err := br.ReadString('\n')
		if err != nil {
			return nil, fmt.Errorf("LANGUAGE: %w", err)
		}
		if strings.HasPrefix(l, "l0 ") {
			break
		}
	}
	return &replayConn{Conn: conn, r: io.MultiReader(strings.NewReader(greeting), br)}, nil
}

// replayConn reads from r, then writes and closes the connection as is.
type replayConn struct {
	net.Conn
	r io.Reader
}

func (c *replayConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// demoLabels are the words of the printout.
type demoLabels struct {
	title, before, now, loggedIn, failed, assumed string
	// pad is blank space as wide on a terminal as before and now.
	pad string
	// The instructions printed when the demo keeps running.
	running, trust, fingerprint, users, example, mailApp, stop string
	// The channels section and the port note.
	channels, statusPage, incidentCase, incidentLink, shieldCase, noticeCase, leaf, moved, held string
}

var demoTexts = map[string]demoLabels{
	"en": {
		title:    "imapwhy demo: imitated providers behind the proxy. For each login: what the provider said (what a mail app shows) and what imapwhy says instead.",
		before:   "before: ",
		now:      "imapwhy:",
		loggedIn: "logged in through the proxy; INBOX holds %d message(s), the first is %q",
		failed:   "the login could not be tried: %v",
		assumed:  "(texts assumed: no wire text of this provider is known)",
		pad:      "        ",

		running:     "The proxy keeps running. Point a mail app or curl at it:",
		trust:       "trust this CA certificate:",
		fingerprint: "its fingerprint:",
		users:       "users:",
		example:     "for example:",
		mailApp:     "In a mail app: IMAP with SSL/TLS, the server and port above, a user and password from the list above.",
		stop:        "The proxy's events follow. Press Ctrl+C to stop.",

		channels:     "For apps that hide the server's words: the other ways imapwhy tells (Gmail imitation)",
		statusPage:   "status page (failures from this PC, with their fixes):",
		incidentCase: "the NO links to a page that explains it (incident page)",
		incidentLink: "incident page:",
		shieldCase:   "the same wrong password again and again: after %d tries the shield answers it from history, and the provider never sees it (no lock-out)",
		noticeCase:   "a cause typing again cannot fix, with the password that worked until now: the app is logged in to a read-only mailbox whose one message explains it (notice mailbox)",
		leaf:         "server certificate fingerprint (what a mail app's \"add exception\" dialog shows):",
		moved:        "port %s is taken: using free ports instead (choose with --listen)",
		held:         "(held back by the shield: not sent to the provider)",
	},
	"ja": {
		title:    "imapwhy デモ: 模擬プロバイダの前に imapwhy を置いています。各ログインについて、プロバイダの応答（メールアプリが表示していたもの）と imapwhy の説明を並べます。",
		before:   "従来:   ",
		now:      "imapwhy:",
		loggedIn: "プロキシ経由でログインしました。受信箱に %d 通、最初の件名は %q",
		failed:   "ログインを試せませんでした: %v",
		assumed:  "（応答文は推定です。このプロバイダの実際の文言は不明）",
		pad:      "        ", // 従来 is two double-width characters

		running:     "プロキシは動き続けます。メールアプリや curl で接続してみてください:",
		trust:       "信頼する CA 証明書:",
		fingerprint: "その指紋:",
		users:       "ユーザー:",
		example:     "例:",
		mailApp:     "メールアプリでは: IMAP、SSL/TLS オン、上のサーバーとポート、上の一覧のユーザーとパスワード。",
		stop:        "以下にプロキシのイベントを表示します。Ctrl+C で終了します。",

		channels:     "サーバーの言葉を表示しないアプリのために: imapwhy が伝えるほかの方法（Gmail の模擬）",
		statusPage:   "状態ページ（この PC からの失敗と対処）:",
		incidentCase: "NO に説明ページ（インシデントページ）へのリンクが付きます",
		incidentLink: "説明ページ:",
		shieldCase:   "同じ間違ったパスワードを何度も: %d 回のあとはシールドが履歴から答え、プロバイダには送りません（ロックされません）",
		noticeCase:   "入力し直しでは直らない原因（これまで使えていたパスワード）: アプリは読み取り専用のメールボックスにログインし、その 1 通が理由を説明します（お知らせメールボックス）",
		leaf:         "サーバー証明書の指紋（メールアプリの「例外を追加」画面に表示されるもの）:",
		moved:        "ポート %s は使用中のため、空いているポートを使います（--listen で指定できます）",
		held:         "（シールドが止めました: プロバイダには送っていません）",
	},
}

// printScenarios logs in to every scenario and prints the comparison.
func (d *demo) printScenarios(w io.Writer) {
	l := demoTexts[d.lang]
	fmt.Fprintln(w, l.title)
	for i, p := range d.providers {
		fmt.Fprintf(w, "\n== %s (%s) via imaps://%s\n", p.Name, p.Host, d.addrs[i])
		if p.Assumed {
			fmt.Fprintf(w, "   %s\n", l.assumed)
		}
		for _, s := range p.Scenarios {
			d.printScenario(w, l, i, s)
		}
	}
}

func (d *demo) printScenario(w io.Writer, l demoLabels, i int, s imitate.Scenario) {
	fmt.Fprintf(w, "\n-- %s: %s\n", s.Name, s.DescriptionIn(d.lang))
	switch s.Command() {
	case "PLAIN":
		fmt.Fprintf(w, "   AUTHENTICATE PLAIN %s / %q\n", s.User, s.Password)
	case "XOAUTH2":
		// An imitation's token: only its start, it runs to hundreds of bytes.
		tok := s.Password
		if len(tok) > 16 {
			tok = tok[:16] + "..."
		}
		fmt.Fprintf(w, "   AUTHENTICATE XOAUTH2 %s / token %s\n", s.User, tok)
	default:
		fmt.Fprintf(w, "   LOGIN %s / %q\n", s.User, s.Password)
	}
	for j, line := range s.Transcript("a1") {
		label := l.before
		if j > 0 {
			label = l.pad
		}
		fmt.Fprintf(w, "   %s %s\n", label, line)
	}
	d.printOutcome(w, l, d.login(i, s))
}

// printHowTo tells how to try the running demo with curl or a mail app.
func (d *demo) printHowTo(w io.Writer) {
	l := demoTexts[d.lang]
	ca := d.certs.CAFile()
	fmt.Fprintf(w, "\n%s\n", l.running)
	fmt.Fprintf(w, "  %s %s\n", l.trust, ca)
	fmt.Fprintf(w, "  %s %s\n", l.fingerprint, d.certs.Fingerprint())
	fmt.Fprintf(w, "  %s %s\n", l.leaf, d.certs.LeafFingerprint())
	for i, p := range d.providers {
		var users []string
		for _, s := range p.Scenarios {
			if !slices.Contains(users, s.User) {
				users = append(users, s.User)
			}
		}
		fmt.Fprintf(w, "  %s  imaps://%s\n      %s %s\n", p.Name, demoDialAddr(d.addrs[i]), l.users, strings.Join(users, ", "))
	}
	if len(d.providers) > 0 {
		var byPassword, byToken *imitate.Scenario
		for j := range d.providers[0].Scenarios {
			s := &d.providers[0].Scenarios[j]
			switch {
			case s.Command() != "XOAUTH2" && byPassword == nil:
				byPassword = s
			case s.Command() == "XOAUTH2" && s.OK() && byToken == nil:
				byToken = s
			}
		}
		if byPassword != nil {
			fmt.Fprintf(w, "  %s\n    curl -v --cacert %s --user %s imaps://%s/INBOX\n",
				l.example, demoShellQuote(ca), demoShellQuote(byPassword.User+":"+byPassword.Password), demoDialAddr(d.addrs[0]))
		}
		if byToken != nil {
			fmt.Fprintf(w, "    curl -v --cacert %s --user %s --oauth2-bearer %s imaps://%s/INBOX\n",
				demoShellQuote(ca), demoShellQuote(byToken.User+":"), demoShellQuote(byToken.Password), demoDialAddr(d.addrs[0]))
		}
	}
	fmt.Fprintf(w, "  %s\n  %s\n", l.mailApp, l.stop)
}

// demoListen is the --listen value: where the first listener goes.
type demoListen struct {
	host string
	port int // 0: any free ports
}

func parseDemoListen(base string, n int) (demoListen, error) {
	host, portStr, err := net.SplitHostPort(base)
	if err != nil {
		return demoListen{}, err
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port+n-1 > 65535 {
		return demoListen{}, fmt.Errorf("%q: the port must be 0 or leave room for %d listeners", base, n)
	}
	return demoListen{host: host, port: port}, nil
}

// addrs returns n listener addresses: the port and the ones after it, or,
// for port 0, n ports free right now.
func (l demoListen) addrs(n int) ([]string, error) {
	addrs := make([]string, n)
	if l.port != 0 {
		for i := range addrs {
			addrs[i] = net.JoinHostPort(l.host, strconv.Itoa(l.port+i))
		}
		return addrs, nil
	}
	// The configuration needs distinct addresses, so port 0 cannot be
	// given n times: take n free ports now (held together, so that they
	// differ) and release them for the proxy. Another process could take
	// one in between; the proxy then fails to bind and says so.
	for i := range addrs {
		ln, err := net.Listen("tcp", net.JoinHostPort(l.host, "0"))
		if err != nil {
			return nil, err
		}
		defer ln.Close()
		addrs[i] = ln.Addr().String()
	}
	return addrs, nil
}

// free reports whether the n ports from l.port on can be bound now.
func (l demoListen) free(n int) bool {
	if l.port == 0 {
		return true
	}
	for i := range n {
		ln, err := net.Listen("tcp", net.JoinHostPort(l.host, strconv.Itoa(l.port+i)))
		if err != nil {
			return false
		}
		ln.Close()
	}
	return true
}

// demoDialAddr is the address a client on this machine uses for listener a:
// a wildcard address is reached through loopback.
func demoDialAddr(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// demoLoadRoots returns a pool holding the PEM certificates in path.
func demoLoadRoots(path string) (*x509.CertPool, error) {
	if path == "" {
		return nil, errors.New("the proxy's certificate has no local CA file")
	}
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the proxy's CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return pool, nil
}

// demoDefaultLanguage is ja when the locale says Japanese, else en.
func demoDefaultLanguage() string {
	for _, v := range []string{"LC_ALL", "LC_MESSAGES", "LANG"} {
		if s := os.Getenv(v); s != "" {
			if strings.HasPrefix(s, "ja") {
				return "ja"
			}
			return "en"
		}
	}
	return "en"
}

// demoShellQuote quotes s for a POSIX shell.
func demoShellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// demoLogger writes the proxy's events for people, in colour only on a
// terminal.
func demoLogger(w, stderr io.Writer) zerolog.Logger {
	f, ok := stderr.(*os.File)
	color := false
	if ok {
		st, err := f.Stat()
		color = err == nil && st.Mode()&os.ModeCharDevice != 0
	}
	cw := zerolog.ConsoleWriter{Out: w, TimeFormat: time.TimeOnly, NoColor: !color}
	return zerolog.New(cw).Level(zerolog.InfoLevel).With().Timestamp().Logger()
}

// demoLogGate drops what is written until open is set: the proxy's log
// events would cut through the printed scenarios; after them they show
// what a person's own mail app does.
type demoLogGate struct {
	open atomic.Bool
	w    io.Writer
}

func (g *demoLogGate) Write(p []byte) (int, error) {
	if !g.open.Load() {
		return len(p), nil
	}
	return g.w.Write(p)
}
