package rescore_test

import (
	"testing"

	"go.uber.org/goleak"
)

// Run joins every goroutine it starts (one reader per partition); so does
// the service the integration tests run in-process.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
