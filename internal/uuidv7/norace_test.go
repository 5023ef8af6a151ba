//go:build !race

// The race detector makes values escape that otherwise do not, so the
// allocation count is checked only without it.

package uuidv7

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestNewDoesNotAllocate(t *testing.T) {
	require.Zero(t, testing.AllocsPerRun(1000, func() { _ = New() }))
}
