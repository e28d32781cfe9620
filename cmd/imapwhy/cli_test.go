package main

import (
	"os"
	"os/exec"
	"path/filepath"
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
