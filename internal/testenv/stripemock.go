package testenv

import (
	"bufio"
	"errors"
	"go/build"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// StripeMockVersion is the stripe-mock release the tests are written
// against (.ci/run installs it).
const StripeMockVersion = "v0.203.0"

// stripeMockStartup bounds how long stripe-mock may take to listen (it
// loads its OpenAPI spec first: about a second, more on a busy machine).
const stripeMockStartup = 30 * time.Second

// StripeMock starts a stripe-mock of its own for tb, on loopback ports
// chosen by the system (both its HTTP and its HTTPS listener: stripe-mock
// opens HTTPS on every interface unless told otherwise), and returns its
// plain-HTTP base URL ("http://127.0.0.1:port", without /v1). The process
// is killed, by its PID, when tb ends.
//
// The binary is stripe-mock on PATH, else in $GOPATH/bin. Without it the
// test is skipped with a message saying how to install it, or fails when CI
// is set. Start one per test binary or top-level test and share it:
// stripe-mock keeps no state, so tests cannot disturb each other.
func StripeMock(tb testing.TB) string {
	tb.Helper()
	bin, err := findStripeMock()
	if err != nil {
		skip(tb, "stripe-mock not found on PATH or in $GOPATH/bin; install it with `go install github.com/stripe/stripe-mock@"+StripeMockVersion+"`")
	}
	// Never -strict-version-check: stripe-go v76 sends Stripe-Version
	// 2023-10-16, which stripe-mock's newer spec would refuse.
	cmd := exec.Command(bin, "-http-addr", "127.0.0.1:0", "-https-addr", "127.0.0.1:0")
	out, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatalf("testenv: stripe-mock: %v", err)
	}
	cmd.Stderr = cmd.Stdout // one stream, read below
	if err := cmd.Start(); err != nil {
		tb.Fatalf("testenv: start stripe-mock (%s): %v", bin, err)
	}
	tb.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})

	addr := make(chan string, 1)
	var seen strings.Builder // what it printed before listening, for errors
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := sc.Text()
			if a, ok := strings.CutPrefix(line, "Listening for HTTP at address: "); ok {
				addr <- strings.TrimSpace(a)
				break
			}
			seen.WriteString(line + "\n")
		}
		close(addr)
		_, _ = io.Copy(io.Discard, out) // keep the pipe flowing until it exits
	}()
	select {
	case a, ok := <-addr:
		if !ok {
			tb.Fatalf("testenv: stripe-mock exited before listening:\n%s", seen.String())
		}
		return "http://" + a
	case <-time.After(stripeMockStartup):
		tb.Fatalf("testenv: stripe-mock did not listen within %s", stripeMockStartup)
		return ""
	}
}

func findStripeMock() (string, error) {
	if p, err := exec.LookPath("stripe-mock"); err == nil {
		return p, nil
	}
	for _, dir := range filepath.SplitList(build.Default.GOPATH) {
		p := filepath.Join(dir, "bin", "stripe-mock")
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p, nil
		}
	}
	return "", errors.New("stripe-mock not found")
}
