package storetest

import (
	"errors"
	"sync"
	"testing"
)

// requireOneWins starts n calls of op at the same moment (op gets the
// call's number) and requires that exactly one succeeds and that every
// other fails with an error that is lost: the store's answer to a race it
// must serialize.
func requireOneWins(t *testing.T, n int, lost error, op func(i int) error) {
	t.Helper()
	requireWins(t, n, 1, lost, op)
}

// requireWins is requireOneWins for races that exactly want of the n
// calls win, such as spenders of a budget that covers want of them.
func requireWins(t *testing.T, n, want int, lost error, op func(i int) error) {
	t.Helper()
	results := make(chan error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			results <- op(i)
		})
	}
	close(start)
	wg.Wait()
	close(results)
	won := 0
	for err := range results {
		if err == nil {
			won++
			continue
		}
		if !errors.Is(err, lost) {
			t.Fatalf("a losing call failed with %v, not %v", err, lost)
		}
	}
	if won != want {
		t.Fatalf("%d of %d concurrent calls succeeded, want exactly %d", won, n, want)
	}
}
