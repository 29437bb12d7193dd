package c2stest_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/adhocd/adhocd/transport/c2s/c2stest"
)

// recorder is a testing.TB that records how a test was stopped.
type recorder struct {
	testing.TB
	failed, skipped string
}

func (r *recorder) Helper()                          {}
func (r *recorder) Fatal(args ...any)                { r.failed = args[0].(string) }
func (r *recorder) Skipf(format string, args ...any) { r.skipped = format }

// TestToolMissingFailsUnlessTheRunOptsOut: a missing tool fails the test,
// with how to install it; only ADHOCD_SKIP_INTEROP=1 turns that into a
// skip that names the tool.
func TestToolMissingFailsUnlessTheRunOptsOut(t *testing.T) {
	t.Setenv(c2stest.SkipInteropEnv, "")
	r := &recorder{TB: t}
	c2stest.ToolMissing(r, "curl not found: apt-get install curl")
	assert.Equal(t, "curl not found: apt-get install curl (or set ADHOCD_SKIP_INTEROP=1 to skip the tests that need it)", r.failed)
	assert.Empty(t, r.skipped)

	t.Setenv(c2stest.SkipInteropEnv, "1")
	r = &recorder{TB: t}
	c2stest.ToolMissing(r, "curl not found: apt-get install curl")
	assert.Empty(t, r.failed)
	assert.Equal(t, "skipped because %s=1: %s", r.skipped)
}
