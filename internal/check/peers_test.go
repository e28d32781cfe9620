package check

import (
	"os"
	"path/filepath"
	"testing"
)

// writeCAFile writes pem to a file for Options.CAFile.
func writeCAFile(t *testing.T, pem []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(path, pem, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
