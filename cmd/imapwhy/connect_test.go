package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/imapwhy/imapwhy/internal/oauthtest"
)

// TestOAuthBridgeConnectCommand: imapwhy connect by the device flow
// against a real provider, the person approving the code on the
// provider's device page; the app password printed once; the state file
// sealed; imapwhy disconnect forgets it.
func TestOAuthBridgeConnectCommand(t *testing.T) {
	op := oauthtest.Start(t, oauthtest.Options{})
	op.AddClient(oauthtest.Client{ID: "imapwhy-cli", Secret: "cli-secret", RedirectURI: "https://127.0.0.1/connect/callback"})
	dir := t.TempDir()
	for name, data := range map[string]string{"ca.pem": string(op.CAPEM), "secret": "cli-secret\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfgFile := filepath.Join(dir, "imapwhy.yaml")
	if err := os.WriteFile(cfgFile, []byte(fmt.Sprintf(`
state_dir: %s
oauth_bridge:
  providers:
    - kind: oidc
      issuer: %s
      ca_file: %s
      client_id: imapwhy-cli
      client_secret_file: %s
      scopes: [openid, email, %s, offline_access]
      users: [%s]
`, dir, op.Issuer, filepath.Join(dir, "ca.pem"), filepath.Join(dir, "secret"), oauthtest.MailScope, oauthtest.Alice)), 0o600); err != nil {
		t.Fatal(err)
	}

	pr, pw := io.Pipe()
	done := make(chan int, 1)
	var stderr strings.Builder
	go func() {
		done <- run([]string{"connect", oauthtest.Alice, "--config", cfgFile}, strings.NewReader(""), pw, &stderr)
		pw.Close()
	}()
	var out strings.Builder
	sc := bufio.NewScanner(pr)
	approved := false
	for sc.Scan() {
		line := sc.Text()
		out.WriteString(line + "\n")
		if code := regexp.MustCompile(`^\s+([B-Z]{4}-[B-Z]{4})$`).FindStringSubmatch(line); code != nil && !approved {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			if err := op.ApproveDevice(ctx, code[1], oauthtest.Alice, oauthtest.AlicePassword); err != nil {
				t.Errorf("approve: %v", err)
			}
			cancel()
			approved = true
		}
	}
	if status := <-done; status != 0 || !approved {
		t.Fatalf("connect: status %d, approved %v\n%s\n%s", status, approved, out.String(), stderr.String())
	}
	m := regexp.MustCompile(`(?m)^\s+([a-z2-9]{4}(-[a-z2-9]{4}){5})$`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no app password printed:\n%s", out.String())
	}
	files, _ := filepath.Glob(filepath.Join(dir, "oauth-bridge", "*.json"))
	if len(files) != 1 {
		t.Fatalf("state files: %v", files)
	}
	data, _ := os.ReadFile(files[0])
	if strings.Contains(string(data), "rt-") || strings.Contains(string(data), m[1]) {
		t.Errorf("the state file holds a token or the password in clear:\n%s", data)
	}
	if fi, _ := os.Stat(files[0]); fi.Mode().Perm() != 0o600 {
		t.Errorf("state file mode %v", fi.Mode().Perm())
	}

	var dout, derr strings.Builder
	if status := run([]string{"disconnect", oauthtest.Alice, "--config", cfgFile, "--password-stdin"}, strings.NewReader(m[1]+"\n"), &dout, &derr); status != 0 {
		t.Fatalf("disconnect: %d %s", status, derr.String())
	}
	if _, err := os.Stat(files[0]); !os.IsNotExist(err) {
		t.Errorf("state file still there after disconnect")
	}
	if n := op.RefreshTokens(); n != 0 {
		t.Errorf("%d refresh tokens valid at the provider after disconnect, want 0 (revoked)", n)
	}
}
