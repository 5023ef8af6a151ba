package uuidv7

import (
	"bytes"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

func TestNewIsAVersion7UUIDOfNow(t *testing.T) {
	before := time.Now().Truncate(time.Millisecond)
	u := New()
	after := time.Now()
	require.Equal(t, uuid.Version(7), u.Version())
	require.Equal(t, uuid.RFC4122, u.Variant())
	sec, nsec := u.Time().UnixTime()
	made := time.Unix(sec, nsec)
	require.False(t, made.Before(before), "%v before %v", made, before)
	require.False(t, made.After(after.Add(time.Millisecond)), "%v after %v", made, after)
	parsed, err := uuid.Parse(u.String())
	require.NoError(t, err)
	require.Equal(t, u, parsed)
}

func TestIDsSortInTheOrderTheyWereMade(t *testing.T) {
	prev := New()
	for range 200_000 { // far more than 4096 per millisecond
		u := New()
		require.Positive(t, bytes.Compare(u[:], prev[:]), "%s after %s", u, prev)
		prev = u
	}
}

func TestTheClockNeverGoesBack(t *testing.T) {
	now := time.Now().UnixNano()
	a := next(now)
	b := next(now - int64(time.Second)) // the wall clock stepped back
	require.Greater(t, b, a)
}

func TestIDsAreUniqueAcrossGoroutines(t *testing.T) {
	const workers, each = 8, 20_000
	out := make([][]uuid.UUID, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for range each {
				out[w] = append(out[w], New())
			}
		})
	}
	wg.Wait()
	seen := make(map[uuid.UUID]struct{}, workers*each)
	for _, ids := range out {
		for _, u := range ids {
			_, dup := seen[u]
			require.False(t, dup, "%s made twice", u)
			seen[u] = struct{}{}
		}
	}
}

func BenchmarkNew(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = New()
	}
}

// BenchmarkGoogleNewV7Baseline is google/uuid's NewV7, the one New stands
// in for on the hot paths.
func BenchmarkGoogleNewV7Baseline(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = uuid.Must(uuid.NewV7())
	}
}
