package memory_test

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/adshare/adshare"
	"github.com/adshare/adshare/auth"
	"github.com/adshare/adshare/decision/decisiontest"
	"github.com/adshare/adshare/store/memory"
)

// New is the embedded default of every store interface: adshare.New takes
// it as its Store (nothing survives a restart), and NewShared stands in
// for Redis on a single instance.
func ExampleNew() {
	store := memory.New()
	app, err := adshare.New(&adshare.Config{Store: store, Shared: memory.NewShared(), Decider: &decisiontest.Fake{}})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	if err := app.Start(ctx); err != nil {
		panic(err)
	}
	defer app.Stop(ctx)

	if _, _, err := app.Auth().Register(ctx, auth.Registration{Email: "ada@example.com", Password: "a long enough passphrase"}); err != nil {
		panic(err)
	}
	u, err := store.UserByEmail(ctx, "ada@example.com")
	if err != nil {
		panic(err)
	}
	fmt.Println(u.Email, u.Role, u.Tier)
	// Output: ada@example.com user free
}

// welcomingStore is a custom store: the memory store (store/postgres works
// the same) with one method of its own. Embedding keeps every other method,
// so it is still an adshare.Store; here each new account is also handed to
// the host's mailer, after it is stored.
type welcomingStore struct {
	*memory.Store
	mu     sync.Mutex
	mailed []string
}

func (s *welcomingStore) CreateAccount(ctx context.Context, a auth.NewAccount) error {
	if err := s.Store.CreateAccount(ctx, a); err != nil {
		return err // ErrEmailTaken and the rest, unchanged
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mailed = append(s.mailed, a.User.Email)
	return nil
}

// A host changes one part of a store by embedding it and overriding that
// part's methods.
func Example_customStore() {
	store := &welcomingStore{Store: memory.New()}
	var _ adshare.Store = store // still every store interface

	app, err := adshare.New(&adshare.Config{Store: store, Shared: memory.NewShared(), Decider: &decisiontest.Fake{}})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	if err := app.Start(ctx); err != nil {
		panic(err)
	}
	defer app.Stop(ctx)

	for _, email := range []string{"ada@example.com", "bo@example.com", "ada@example.com"} {
		_, _, err := app.Auth().Register(ctx, auth.Registration{Email: email, Password: "a long enough passphrase"})
		fmt.Println(email, err)
	}
	fmt.Println("welcome mails:", store.mailed)
	// Output:
	// ada@example.com <nil>
	// bo@example.com <nil>
	// ada@example.com an account with this email already exists
	// welcome mails: [ada@example.com bo@example.com]
}

// NewLimiter is GCRA in process: a burst, then one event per interval.
func ExampleNewLimiter() {
	l := memory.NewLimiter()
	ctx := context.Background()
	lim := auth.Limit{Rate: 1, Period: time.Minute, Burst: 2}
	for range 3 {
		r, err := l.Allow(ctx, "login:ada@example.com", lim)
		if err != nil {
			panic(err)
		}
		fmt.Println(r.Allowed, r.Remaining, r.RetryAfter.Round(time.Second))
	}
	// Output:
	// true 1 0s
	// true 0 0s
	// false 0 1m0s
}

// NewBus carries messages between the parts of one instance (cache
// invalidations); store/redis's Bus does it between instances.
func ExampleNewBus() {
	bus := memory.NewBus()
	ctx := context.Background()
	got := make(chan string, 1)
	stop, err := bus.Subscribe(ctx, "spaces", func(m string) { got <- m })
	if err != nil {
		panic(err)
	}
	defer stop()
	if err := bus.Publish(ctx, "spaces", "changed:0190a3b4"); err != nil {
		panic(err)
	}
	fmt.Println(<-got)
	// Output: changed:0190a3b4
}
