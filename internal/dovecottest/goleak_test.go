package dovecottest

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them
// (no goroutine left behind after any test).
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
