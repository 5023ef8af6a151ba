//go:build !unix

package transport

import "testing"

// needFiles is a no-op where open-file limits are not set this way.
func needFiles(*testing.B, uint64) {}
