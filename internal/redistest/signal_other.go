//go:build !unix

package redistest

import "os"

// No job control signals: Pause and Resume fail the test.
var sigStop, sigCont os.Signal
