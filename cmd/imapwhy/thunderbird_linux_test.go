package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"fmt"
	"image/color"
	"image/png"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/imapwhy/imapwhy/internal/dovecottest"
	"github.com/imapwhy/imapwhy/internal/testkit"
)

// TestThunderbirdAlert shows imapwhy's ALERT to a real Thunderbird (Debian's
// thunderbird with thunderbird-l10n-ja) on a virtual X display, with a
// Japanese UI in front of a "language: ja" listener and an English one in
// front of a "language: en" listener; Dovecot is the upstream. Each run
// uses a fresh profile: one IMAP account (SSL/TLS, the proxy's port, user
// alice) written into user.js and imapwhy's local CA added to the profile's
// certificate database with certutil, so no certificate dialog comes up.
// Thunderbird asks for the password; xdotool types a wrong one.
//
// What Thunderbird users rely on:
//   - Thunderbird reads response text as 7-bit, so the ALERT it got (its
//     own IMAP log) is ASCII on either listener, and carries the link to
//     the incident page in the listener's language.
//   - Thunderbird tries AUTHENTICATE PLAIN and then LOGIN on the same
//     connection; the second refusal is a NO without ALERT, so one modal
//     alert comes up per failed password, then Thunderbird's own "login
//     failed" dialog (imapwhy logs both refusals). The test ends there:
//     cancelling that dialog lets Thunderbird's second connection (it
//     opens two at start) try the same password, which is refused with an
//     ALERT of its own.
//
// With IMAPWHY_SCREENSHOTS=DIR the alert windows are kept there as
// thunderbird-alert-ja.png and thunderbird-alert-en.png (docs/ holds them).
func TestThunderbirdAlert(t *testing.T) {
	for _, tool := range []string{"thunderbird", "Xvfb", "xdotool", "certutil", "import"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is missing (scripts/test installs thunderbird, thunderbird-l10n-ja, xvfb, xdotool, libnss3-tools, imagemagick): %v", tool, err)
		}
	}
	if _, err := os.Stat("/usr/lib/thunderbird/extensions/langpack-ja@thunderbird.mozilla.org.xpi"); err != nil {
		t.Fatalf("Thunderbird's Japanese language pack (thunderbird-l10n-ja) is missing: %v", err)
	}
	srv := dovecottest.Start(t, dovecottest.Options{})
	bin := buildImapwhy(t)
	dir := t.TempDir()
	dovecotCA := srv.CAFile(t)
	upstream := fmt.Sprintf(`{address: %q, tls: implicit, ca_file: %q}`, srv.IMAPS, dovecotCA)
	cfg := fmt.Sprintf(`state_dir: %s
log: {format: json, level: info}
admin: {address: ""}
web: {address: "127.0.0.1:0"}
listeners:
  - {address: "127.0.0.1:0", tls: implicit, language: ja, upstream: %s}
  - {address: "127.0.0.1:0", tls: implicit, language: en, upstream: %s}
`, filepath.Join(dir, "state"), upstream, upstream)
	cfgFile := filepath.Join(dir, "imapwhy.yaml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startServe(t, bin, cfgFile)
	jaAddr := p.expect(`listening on (\S+) \(implicit\)`)[1]
	enAddr := p.expect(`listening on (\S+) \(implicit\)`)[1]
	caFile := p.expect(`local certificate authority (\S+)`)[1]

	display := startXvfb(t)
	shots := os.Getenv("IMAPWHY_SCREENSHOTS")
	if shots == "" {
		shots = t.TempDir()
	}
	const password = "wrong-Pa55word"
	for _, c := range []struct {
		lang, locale, addr string
		alertTitle         string // Thunderbird's title for a server's ALERT
		pageLang           string
	}{
		{"ja", "ja", jaAddr, "警告", `<html lang="ja">`},
		{"en", "en-US", enAddr, "Alert", `<html lang="en">`},
	} {
		before := len(p.stderr.Events("auth_failure"))
		tb := startThunderbird(t, display, c.locale, c.addr, caFile)

		prompt := tb.waitDialog(t, 120*time.Second, "the password prompt", "")
		if !strings.Contains(prompt.title, "alice") {
			t.Fatalf("%s: first dialog %q is not the password prompt", c.lang, prompt.title)
		}
		tb.xdotool(t, "windowfocus", "--sync", prompt.id)
		tb.xdotool(t, "type", "--delay", "20", password)
		tb.xdotool(t, "key", "Return")

		alert := tb.waitDialog(t, 30*time.Second, "the alert", prompt.id)
		if alert.title != c.alertTitle {
			t.Fatalf("%s: after the password came %q, not Thunderbird's alert %q", c.lang, alert.title, c.alertTitle)
		}
		shot := filepath.Join(shots, "thunderbird-alert-"+c.lang+".png")
		tb.screenshot(t, alert.id, shot)
		tb.xdotool(t, "windowfocus", "--sync", alert.id)
		tb.xdotool(t, "key", "Return")

		// Thunderbird retries with LOGIN and then shows its own dialog:
		// no second alert in between.
		failed := tb.waitDialog(t, 30*time.Second, "Thunderbird's login-failed dialog", alert.id)
		if !strings.Contains(failed.title, `"alice@imapwhy"`) {
			t.Errorf("%s: after the alert came %q, not the login-failed dialog (a second alert?)", c.lang, failed.title)
		}

		wire := tb.imapLog(t)
		var alerts, refusals []string
		for _, l := range wire {
			if strings.HasPrefix(l, "* OK [ALERT] ") {
				alerts = append(alerts, l)
			}
			if regexp.MustCompile(`^\d+ NO \[AUTHENTICATIONFAILED\] `).MatchString(l) {
				refusals = append(refusals, l)
			}
		}
		if len(alerts) != 1 || len(refusals) < 2 {
			t.Errorf("%s: Thunderbird got %d ALERT and %d refusals, want 1 ALERT for PLAIN then LOGIN refused:\n%s",
				c.lang, len(alerts), len(refusals), strings.Join(wire, "\n"))
		}
		for _, l := range append(alerts, refusals...) {
			for _, r := range l {
				if r > 0x7e {
					t.Errorf("%s: non-ASCII text reached a client that did not ask for UTF-8: %q", c.lang, l)
					break
				}
			}
		}
		if len(alerts) > 0 {
			link := regexp.MustCompile(`https://\S+/why/\S+`).FindString(alerts[0])
			if page := getPage(t, caFile, link); !strings.Contains(page, c.pageLang) {
				t.Errorf("%s: the ALERT's link %q is not the page in the listener's language:\n%.300s", c.lang, link, page)
			}
		}
		events := p.stderr.Events("auth_failure")[before:]
		mechs := map[any]bool{}
		for _, e := range events {
			mechs[e["mechanism"]] = true
			if e["conn"] != events[0]["conn"] {
				t.Errorf("%s: the refusals came on several connections: %v", c.lang, events)
			}
		}
		if !mechs["PLAIN"] || !mechs["LOGIN"] {
			t.Errorf("%s: imapwhy logged %d auth_failure events with mechanisms %v, want PLAIN then LOGIN", c.lang, len(events), mechs)
		}
		t.Logf("%s: %d auth_failure events, %d ALERT; screenshot %s", c.lang, len(events), len(alerts), shot)
		tb.stop()
	}
	if strings.Contains(p.stderr.String(), password) {
		t.Error("the password reached imapwhy's log")
	}
}

// getPage GETs url, verifying TLS against the CA in caFile.
func getPage(t *testing.T, caFile, url string) string {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: caPool(t, caFile)}}}
	_, body := httpGet(t, c, url)
	return body
}

// startXvfb starts a virtual X display (on a free display number) for the
// test and returns its name, ":N".
func startXvfb(t *testing.T) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cmd := exec.Command("Xvfb", "-displayfd", "3", "-screen", "0", "1280x800x24", "-nolisten", "tcp")
	cmd.ExtraFiles = []*os.File{w}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	got := make(chan string, 1)
	go func() {
		l, _ := bufio.NewReader(r).ReadString('\n')
		got <- strings.TrimSpace(l)
	}()
	select {
	case n := <-got:
		if _, err := strconv.Atoi(n); err != nil {
			t.Fatalf("Xvfb did not name its display (%q)", n)
		}
		return ":" + n
	case <-time.After(30 * time.Second):
		t.Fatal("Xvfb did not start within 30s")
	}
	return ""
}

// thunderbird is one Thunderbird process tree with its own profile.
type thunderbird struct {
	cmd     *exec.Cmd
	display string
	logBase string
	out     *testkit.Buffer // written by exec's copying goroutine
}

// startThunderbird starts Thunderbird with a fresh profile holding one IMAP
// account at addr (SSL/TLS, user alice, no saved password) and the CA in
// caFile trusted, with the UI in locale. The network stays on loopback:
// no updates, telemetry, add-on or provider look-ups.
func startThunderbird(t *testing.T, display, locale, addr, caFile string) *thunderbird {
	t.Helper()
	home := t.TempDir()
	profile := filepath.Join(home, "profile")
	if err := os.Mkdir(profile, 0o700); err != nil {
		t.Fatal(err)
	}
	host, portText, _ := strings.Cut(addr, ":")
	port, err := strconv.Atoi(portText)
	if err != nil {
		t.Fatalf("listener address %q", addr)
	}
	prefs := map[string]any{
		"mail.accountmanager.accounts":                    "account1,account2",
		"mail.accountmanager.defaultaccount":              "account1",
		"mail.accountmanager.localfoldersserver":          "server2",
		"mail.account.account1.server":                    "server1",
		"mail.account.account1.identities":                "id1",
		"mail.account.account2.server":                    "server2",
		"mail.server.server1.type":                        "imap",
		"mail.server.server1.hostname":                    host,
		"mail.server.server1.port":                        port,
		"mail.server.server1.socketType":                  3, // SSL/TLS
		"mail.server.server1.authMethod":                  3, // normal password
		"mail.server.server1.userName":                    "alice",
		"mail.server.server1.name":                        "alice@imapwhy",
		"mail.server.server1.login_at_startup":            true,
		"mail.server.server2.type":                        "none",
		"mail.server.server2.hostname":                    "Local Folders",
		"mail.server.server2.userName":                    "nobody",
		"mail.server.server2.name":                        "Local Folders",
		"mail.identity.id1.fullName":                      "Alice",
		"mail.identity.id1.useremail":                     "alice@example.com",
		"mail.identity.id1.valid":                         true,
		"intl.locale.requested":                           locale,
		"app.update.enabled":                              false,
		"app.update.auto":                                 false,
		"mail.shell.checkDefaultClient":                   false,
		"mail.provider.enabled":                           false,
		"mail.rights.version":                             1,
		"mailnews.start_page.enabled":                     false,
		"network.proxy.type":                              0,
		"network.captive-portal-service.enabled":          false,
		"network.connectivity-service.enabled":            false,
		"datareporting.healthreport.uploadEnabled":        false,
		"datareporting.policy.dataSubmissionEnabled":      false,
		"toolkit.telemetry.enabled":                       false,
		"toolkit.telemetry.server":                        "",
		"extensions.update.enabled":                       false,
		"extensions.getAddons.cache.enabled":              false,
		"extensions.blocklist.enabled":                    false,
		"browser.safebrowsing.malware.enabled":            false,
		"browser.safebrowsing.phishing.enabled":           false,
		"services.settings.server":                        "http://127.0.0.1:9/",
		"app.normandy.enabled":                            false,
		"security.OCSP.enabled":                           0,
		"security.remote_settings.crlite_filters.enabled": false,
		"mail.biff.show_alert":                            false,
		"mail.biff.play_sound":                            false,
	}
	var js strings.Builder
	for k, v := range prefs {
		val := fmt.Sprint(v)
		if s, ok := v.(string); ok {
			val = strconv.Quote(s)
		}
		fmt.Fprintf(&js, "user_pref(%q, %s);\n", k, val)
	}
	if err := os.WriteFile(filepath.Join(profile, "user.js"), []byte(js.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"-N", "--empty-password", "-d", "sql:" + profile},
		{"-A", "-n", "imapwhy", "-t", "C,,", "-i", caFile, "-d", "sql:" + profile},
	} {
		if out, err := exec.Command("certutil", args...).CombinedOutput(); err != nil {
			t.Fatalf("certutil %v: %v\n%s", args, err, out)
		}
	}
	tb := &thunderbird{display: display, logBase: filepath.Join(home, "imap.log"), out: &testkit.Buffer{}}
	tb.cmd = exec.Command("thunderbird", "-profile", profile, "-no-remote")
	tb.cmd.Env = append(os.Environ(), "DISPLAY="+display, "HOME="+home, "XDG_CONFIG_HOME="+home, "XDG_CACHE_HOME="+home,
		"LANG=C.UTF-8", "MOZ_CRASHREPORTER_DISABLE=1",
		"MOZ_LOG=IMAP:5,sync", "MOZ_LOG_FILE="+tb.logBase)
	tb.cmd.Stdout, tb.cmd.Stderr = tb.out, tb.out
	tb.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := tb.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tb.stop)
	return tb
}

// stop kills Thunderbird's whole process group (once).
func (tb *thunderbird) stop() {
	if tb.cmd.ProcessState != nil {
		return
	}
	syscall.Kill(-tb.cmd.Process.Pid, syscall.SIGKILL)
	tb.cmd.Wait()
	// Its content processes die with it; wait so that none still writes
	// into the profile when the test's directories are removed.
	for i := 0; i < 50 && syscall.Kill(-tb.cmd.Process.Pid, 0) == nil; i++ {
		time.Sleep(100 * time.Millisecond)
	}
}

func (tb *thunderbird) xdotool(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command("xdotool", args...)
	cmd.Env = append(os.Environ(), "DISPLAY="+tb.display)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("xdotool %v: %v", args, err)
	}
	return strings.TrimSpace(string(out))
}

// dialog is a top-level window of Thunderbird's other than the main window.
type dialog struct{ id, title string }

// waitDialog waits for a visible dialog window other than notID ("": any)
// and returns it. Thunderbird's prompts and alerts have the X class name
// "Thunderbird" (the main window's is "Mail").
func (tb *thunderbird) waitDialog(t *testing.T, d time.Duration, what string, notID string) dialog {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if tb.cmd.ProcessState != nil {
			break
		}
		cmd := exec.Command("xdotool", "search", "--onlyvisible", "--classname", "^Thunderbird$")
		cmd.Env = append(os.Environ(), "DISPLAY="+tb.display)
		out, _ := cmd.Output()
		for _, id := range strings.Fields(string(out)) {
			if id == notID {
				continue
			}
			name := exec.Command("xdotool", "getwindowname", id)
			name.Env = cmd.Env
			if title, err := name.Output(); err == nil {
				return dialog{id: id, title: strings.TrimSpace(string(title))}
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("no %s from Thunderbird within %v; its output:\n%s\nIMAP log:\n%s", what, d, tb.out, strings.Join(tb.imapLog(t), "\n"))
	return dialog{}
}

// screenshot saves the window id as a PNG in file once it is painted: the
// same picture twice in a row, with more than a background's few colours.
func (tb *thunderbird) screenshot(t *testing.T, id, file string) {
	t.Helper()
	var last []byte
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		time.Sleep(300 * time.Millisecond)
		out, err := exec.Command("import", "-display", tb.display, "-window", id, "png:-").Output()
		if err != nil {
			t.Fatalf("screenshot of window %s: %v", id, err)
		}
		img, err := png.Decode(bytes.NewReader(out))
		if err != nil {
			t.Fatalf("screenshot of window %s: %v", id, err)
		}
		var pix bytes.Buffer
		colours := map[color.Color]bool{}
		b := img.Bounds()
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				c := color.RGBAModel.Convert(img.At(x, y))
				colours[c] = true
				pix.Write([]byte{c.(color.RGBA).R, c.(color.RGBA).G, c.(color.RGBA).B})
			}
		}
		if len(colours) > 16 && bytes.Equal(pix.Bytes(), last) {
			f, err := os.Create(file)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if err := png.Encode(f, img); err != nil {
				t.Fatal(err)
			}
			return
		}
		last = pix.Bytes()
	}
	t.Fatalf("window %s was not painted within 20s", id)
}

// imapLog returns the lines Thunderbird received from the server, from its
// own IMAP log (MOZ_LOG).
func (tb *thunderbird) imapLog(t *testing.T) []string {
	t.Helper()
	files, _ := filepath.Glob(tb.logBase + "*")
	var lines []string
	const mark = ":CreateNewLineFromSocket: "
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(b), "\n") {
			if _, after, ok := strings.Cut(l, mark); ok {
				lines = append(lines, strings.TrimRight(after, "\r"))
			}
		}
	}
	return lines
}
