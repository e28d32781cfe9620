package main

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strings"
	"testing"
)

// TestVersionFromBuildInfo: the version line carries the module version
// and the commit Go records at build time.
func TestVersionFromBuildInfo(t *testing.T) {
	info := &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Path: "github.com/imapwhy/imapwhy", Version: "v0.3.0"},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "0123abc"}, {Key: "vcs.modified", Value: "true"}}}
	for _, c := range []struct {
		set  string
		info *debug.BuildInfo
		ok   bool
		want string
	}{
		{"", info, true, "imapwhy v0.3.0 (commit 0123abc+dirty, go1.26.0)"},
		{"v9", info, true, "imapwhy v9 (commit 0123abc+dirty, go1.26.0)"},
		{"", &debug.BuildInfo{GoVersion: "go1.26.0"}, true, "imapwhy (devel) (go1.26.0)"},
		{"", nil, false, "imapwhy unknown"},
	} {
		if got := versionFrom(c.set, c.info, c.ok); got != c.want {
			t.Errorf("versionFrom(%q, %+v) = %q, want %q", c.set, c.info, got, c.want)
		}
	}

	// The real binary, built with VCS stamping: from a git clone it names
	// HEAD. (Go stamps no commit in a linked worktree, whose .git is a file.)
	bin := filepath.Join(t.TempDir(), "imapwhy")
	if out, err := exec.Command("go", "build", "-buildvcs=auto", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "version").Output()
	if err != nil {
		t.Fatalf("imapwhy version: %v", err)
	}
	want := "imapwhy (devel) (go"
	if fi, err := os.Stat(filepath.Join("..", "..", ".git")); err == nil && fi.IsDir() {
		head, err := exec.Command("git", "rev-parse", "HEAD").Output()
		if err != nil {
			t.Fatalf("git rev-parse: %v", err)
		}
		want = "(commit " + strings.TrimSpace(string(head))
	}
	if !strings.Contains(string(out), want) {
		t.Errorf("imapwhy version = %q, want it to contain %q", out, want)
	}
}

// TestHelpEveryCommand: `imapwhy CMD --help` and `imapwhy help CMD` print
// the command's own usage and exit 0.
func TestHelpEveryCommand(t *testing.T) {
	for cmd := range commands {
		for _, args := range [][]string{{cmd, "--help"}, {cmd, "-h"}, {"help", cmd}} {
			var out, errOut bytes.Buffer
			code := run(args, strings.NewReader(""), &out, &errOut)
			if code != 0 {
				t.Errorf("imapwhy %s: exit %d, want 0\n%s%s", strings.Join(args, " "), code, &out, &errOut)
			}
			if text := out.String() + errOut.String(); !strings.Contains(text, "imapwhy "+cmd) {
				t.Errorf("imapwhy %s: the usage does not name %q:\n%s", strings.Join(args, " "), "imapwhy "+cmd, text)
			}
		}
	}
	// The commands without options of their own: the general usage.
	for _, args := range [][]string{{"help", "help"}, {"help", "--help"}, {"help", "version"}} {
		var out, errOut bytes.Buffer
		if code := run(args, strings.NewReader(""), &out, &errOut); code != 0 || out.String() != usage {
			t.Errorf("imapwhy %s: exit %d, want 0 and the usage\n%s%s", strings.Join(args, " "), code, &out, &errOut)
		}
	}
	var out, errOut bytes.Buffer
	if code := run([]string{"help", "nosuch"}, strings.NewReader(""), &out, &errOut); code != 2 {
		t.Errorf("imapwhy help nosuch: exit %d, want 2", code)
	}
}

// TestUsageNamesEveryFlag: the general usage shows, for every command,
// each option its --help lists, so the two cannot drift apart.
func TestUsageNamesEveryFlag(t *testing.T) {
	flagLine := regexp.MustCompile(`(?m)^  -([a-z][a-z0-9-]*)`)
	for _, c := range commandList {
		var out, errOut bytes.Buffer
		run([]string{c.name, "--help"}, strings.NewReader(""), &out, &errOut)
		flags := flagLine.FindAllStringSubmatch(out.String()+errOut.String(), -1)
		if len(flags) == 0 {
			t.Errorf("imapwhy %s --help lists no options", c.name)
		}
		synopsis := usage[strings.Index(usage, "imapwhy "+c.name+" "):]
		synopsis = synopsis[:strings.Index(synopsis, c.summary)]
		for _, f := range flags {
			if !strings.Contains(synopsis, "--"+f[1]) {
				t.Errorf("imapwhy %s: the general usage does not show --%s:\n%s", c.name, f[1], synopsis)
			}
		}
	}
	if !strings.Contains(usage, "--tls implicit|starttls|none") {
		t.Errorf("the general usage lacks check's --tls none:\n%s", usage)
	}
}

// TestAutostartFiles: the files that start imapwhy at login parse as their
// system reads them, and run a command line serve accepts.
func TestAutostartFiles(t *testing.T) {
	dir := filepath.Join("..", "..", "configs", "autostart")
	checkArgs := func(where string, args []string) {
		t.Helper()
		if len(args) < 1 || args[0] != "serve" {
			t.Errorf("%s: runs %q, want imapwhy serve", where, args)
			return
		}
		// Flags are parsed in order: --help at the end exits 0 only when
		// every flag before it is one serve knows.
		var out, errOut bytes.Buffer
		if code := run(append(args[:len(args):len(args)], "--help"), strings.NewReader(""), &out, &errOut); code != 0 {
			t.Errorf("%s: imapwhy %s is not a valid command line (exit %d):\n%s", where, strings.Join(args, " "), code, &errOut)
		}
	}

	// systemd: sections and keys, ExecStart the binary then serve.
	unit, err := os.ReadFile(filepath.Join(dir, "imapwhy.service"))
	if err != nil {
		t.Fatal(err)
	}
	sections := map[string]map[string]string{}
	var cur map[string]string
	for i, line := range strings.Split(string(unit), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			cur = map[string]string{}
			sections[line[1:len(line)-1]] = cur
		case cur != nil && strings.Contains(line, "="):
			k, v, _ := strings.Cut(line, "=")
			cur[k] = v
		default:
			t.Errorf("imapwhy.service:%d: not a section, key=value or comment: %q", i+1, line)
		}
	}
	if sections["Install"]["WantedBy"] != "default.target" {
		t.Errorf("imapwhy.service: [Install] WantedBy = %q, want default.target (a user unit started at login)", sections["Install"]["WantedBy"])
	}
	start := strings.Fields(sections["Service"]["ExecStart"])
	if len(start) < 2 || filepath.Base(start[0]) != "imapwhy" {
		t.Fatalf("imapwhy.service: ExecStart = %q", start)
	}
	checkArgs("imapwhy.service", start[1:])

	// launchd: parsed by Python's plistlib, as plutil would.
	py := `import json, plistlib, sys
print(json.dumps(plistlib.load(open(sys.argv[1], "rb"))))`
	out, err := exec.Command("python3", "-c", py, filepath.Join(dir, "io.github.imapwhy.plist")).CombinedOutput()
	if err != nil {
		t.Fatalf("plistlib: %v\n%s", err, out)
	}
	var plist struct {
		Label            string
		ProgramArguments []string
		RunAtLoad        bool
	}
	if err := json.Unmarshal(out, &plist); err != nil {
		t.Fatal(err)
	}
	if plist.Label == "" || !plist.RunAtLoad || len(plist.ProgramArguments) < 2 || filepath.Base(plist.ProgramArguments[0]) != "imapwhy" {
		t.Errorf("launchd plist: %+v", plist)
	} else {
		checkArgs("io.github.imapwhy.plist", plist.ProgramArguments[1:])
	}

	// Task Scheduler: the task XML schema's logon trigger and action.
	raw, err := os.ReadFile(filepath.Join(dir, "imapwhy-task.xml"))
	if err != nil {
		t.Fatal(err)
	}
	var task struct {
		XMLName  xml.Name `xml:"http://schemas.microsoft.com/windows/2004/02/mit/task Task"`
		Triggers struct {
			Logon *struct{ Enabled bool } `xml:"LogonTrigger"`
		}
		Actions struct {
			Exec struct{ Command, Arguments string }
		}
	}
	if err := xml.Unmarshal(raw, &task); err != nil {
		t.Fatalf("imapwhy-task.xml: %v", err)
	}
	if task.Triggers.Logon == nil || !task.Triggers.Logon.Enabled || !strings.HasSuffix(task.Actions.Exec.Command, `\imapwhy.exe`) {
		t.Errorf("imapwhy-task.xml: %+v", task)
	}
	checkArgs("imapwhy-task.xml", strings.Fields(task.Actions.Exec.Arguments))
	if md, err := os.ReadFile(filepath.Join(dir, "windows.md")); err != nil || !bytes.Contains(md, []byte("schtasks /Create /TN imapwhy /XML imapwhy-task.xml")) {
		t.Errorf("windows.md: the instructions do not create the task from the file (%v)", err)
	}
}

// TestServeBusyPort: a port already in use is named, with the flag and
// the key that move it.
func TestServeBusyPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "imapwhy.yaml")
	os.WriteFile(cfgFile, []byte("state_dir: "+filepath.Join(dir, "state")+"\nweb: {address: \"\"}\n"), 0o600)
	for _, c := range []struct {
		args []string
		hint string
	}{
		{[]string{"--listen", ln.Addr().String(), "--listen", "127.0.0.1:0"}, "--listen (listeners[0].address)"},
		{[]string{"--listen", "127.0.0.1:0", "--listen", "127.0.0.1:0", "--web", ln.Addr().String()}, "--web (web.address)"},
	} {
		var out, errOut bytes.Buffer
		code := run(append([]string{"serve", "--config", cfgFile}, c.args...), strings.NewReader(""), &out, &errOut)
		want := "port " + port + " is taken (another imapwhy, or another program): choose another with " + c.hint
		if code != 1 || !strings.Contains(errOut.String(), want) {
			t.Errorf("serve %q: exit %d, stderr lacks %q:\n%s", c.args, code, want, errOut.String())
		}
	}
}
