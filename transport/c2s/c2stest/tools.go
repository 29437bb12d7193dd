package c2stest

import (
	"os"
	"testing"
)

// SkipInteropEnv names the variable that opts a run out of the tests that
// need third-party tools (slixmpp, go-sendxmpp, node, chromium, curl):
// ADHOCD_SKIP_INTEROP=1 go test -v ./... then names each skipped test and
// its tool. Without it a missing tool fails the test; ./test.sh installs
// them all.
const SkipInteropEnv = "ADHOCD_SKIP_INTEROP"

// ToolMissing stops t because a tool it needs is missing; msg says how to
// install it. The test fails, unless the run opted out with
// ADHOCD_SKIP_INTEROP=1, when it is skipped with msg.
func ToolMissing(t testing.TB, msg string) {
	t.Helper()
	if os.Getenv(SkipInteropEnv) == "1" {
		t.Skipf("skipped because %s=1: %s", SkipInteropEnv, msg)
		return
	}
	t.Fatal(msg + " (or set " + SkipInteropEnv + "=1 to skip the tests that need it)")
}
