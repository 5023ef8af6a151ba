//go:build unix

package transport

import (
	"syscall"
	"testing"
)

// needFiles raises the process's open-file limit to at least n (as far
// as the hard limit, and past it where the process may), failing b with
// what to run when it cannot.
func needFiles(b *testing.B, n uint64) {
	b.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		b.Fatal(err)
	}
	if lim.Cur >= n {
		return
	}
	want := syscall.Rlimit{Cur: n, Max: max(lim.Max, n)}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err != nil {
		b.Fatalf("this benchmark needs %d open files (limit %d/%d: %v); raise it with ulimit -n", n, lim.Cur, lim.Max, err)
	}
}
