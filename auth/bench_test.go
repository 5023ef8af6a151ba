package auth_test

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/auth"
	"github.com/adshare/adshare/internal/testenv"
	"github.com/adshare/adshare/store/memory"
	"github.com/adshare/adshare/store/postgres/postgrestest"
	"github.com/adshare/adshare/store/redis"
)

// benchService builds a service on PostgreSQL and Redis, with limits that
// do not get in a benchmark's way.
func benchService(b *testing.B) *auth.Service {
	b.Helper()
	db := postgrestest.New(b)
	url, prefix := testenv.Redis(b)
	rc, err := redis.Open(context.Background(), url, &redis.Config{Prefix: prefix})
	require.NoError(b, err)
	b.Cleanup(func() { _ = rc.Stop(context.Background()) })
	revs := rc.RevocationList(nil)
	require.NoError(b, revs.Start(context.Background()))
	b.Cleanup(func() { _ = revs.Stop(context.Background()) })
	key, _ := auth.GenerateSigningKey()
	keys, _ := auth.NewKeySet(key)
	tokens, _ := auth.NewTokens(keys, auth.TokenConfig{Issuer: "https://api.adshare.test"})
	unlimited := auth.Limit{Rate: 1_000_000, Period: time.Second, Burst: 1_000_000}
	svc, err := auth.NewService(auth.Config{
		Users: db, Sessions: db, Identities: db, Audit: db,
		Limiter: rc.Limiter(), Revocations: revs, OneTime: rc.OneTimeStore(),
		Tokens: tokens, RefreshKey: testRefreshKey,
		RefreshLimitPerClient: unlimited, RegisterLimitPerClient: unlimited,
	})
	require.NoError(b, err)
	return svc
}

// BenchmarkRefreshPostgresRedis measures refresh-token rotations per second
// on PostgreSQL + Redis: each rotation is one SQL statement, one Redis
// limiter call, one audit insert and an access token signature. Compare
// with BenchmarkPostgresRoundTripBaseline in the same run.
func BenchmarkRefreshPostgresRedis(b *testing.B) {
	svc := benchService(b)
	const sessions = 64
	var tokensMu sync.Mutex
	pool := make([]string, 0, sessions)
	for i := range sessions {
		_, pair, err := svc.Register(client("198.51.100.1"), auth.Registration{Email: fmt.Sprintf("bench%d@example.com", i), Password: goodPassword})
		require.NoError(b, err)
		pool = append(pool, pair.RefreshToken)
	}
	b.SetParallelism(8) // 16 goroutines on 2 CPUs: enough to keep the pool busy
	start := time.Now()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		tokensMu.Lock()
		tok := pool[len(pool)-1]
		pool = pool[:len(pool)-1]
		tokensMu.Unlock()
		ctx := client("198.51.100.2")
		for pb.Next() {
			pair, err := svc.Refresh(ctx, tok)
			if err != nil {
				b.Error(err)
				return
			}
			tok = pair.RefreshToken
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "rotations/s")
}

// BenchmarkPostgresRoundTripBaseline is the floor: one trivial statement
// per operation, on a pool of the same size, at the same parallelism.
func BenchmarkPostgresRoundTripBaseline(b *testing.B) {
	db := postgrestest.New(b)
	b.SetParallelism(8)
	start := time.Now()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := db.Pool().Exec(context.Background(), "SELECT 1"); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "statements/s")
}

// BenchmarkLogin is one password login on memory stores; compare with
// BenchmarkPasswordHashBaseline: login costs the hash and little more.
func BenchmarkLogin(b *testing.B) {
	svc := floodService(b, 0)
	for b.Loop() {
		if _, _, err := svc.Login(client("198.51.100.3"), "flood@example.com", goodPassword); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPasswordHashBaseline is one argon2id hash at the default cost.
func BenchmarkPasswordHashBaseline(b *testing.B) {
	h, err := auth.NewHasher(auth.HasherConfig{})
	require.NoError(b, err)
	for b.Loop() {
		if _, err := h.Hash(context.Background(), goodPassword); err != nil {
			b.Fatal(err)
		}
	}
}

func floodService(b *testing.B, maxConcurrent int) *auth.Service {
	b.Helper()
	store := memory.New()
	key, _ := auth.GenerateSigningKey()
	keys, _ := auth.NewKeySet(key)
	tokens, _ := auth.NewTokens(keys, auth.TokenConfig{Issuer: "https://api.adshare.test"})
	hasher, err := auth.NewHasher(auth.HasherConfig{MaxConcurrent: maxConcurrent, MaxWait: time.Minute})
	require.NoError(b, err)
	unlimited := auth.Limit{Rate: 1_000_000, Period: time.Second, Burst: 1_000_000}
	svc, err := auth.NewService(auth.Config{
		Users: store, Sessions: store, Identities: store, Audit: store,
		Limiter: memory.NewLimiter(), Revocations: memory.NewRevocationList(), OneTime: memory.NewOneTimeStore(),
		Tokens: tokens, RefreshKey: testRefreshKey, Hasher: hasher,
		LoginLimitPerAccount: unlimited, LoginLimitPerClient: unlimited, RegisterLimitPerClient: unlimited,
	})
	require.NoError(b, err)
	_, _, err = svc.Register(client("198.51.100.1"), auth.Registration{Email: "flood@example.com", Password: goodPassword})
	require.NoError(b, err)
	return svc
}

// loginFlood fires n logins at once and reports the peak heap in use while
// they run.
func loginFlood(b *testing.B, maxConcurrent, n int) {
	svc := floodService(b, maxConcurrent)
	for b.Loop() {
		runtime.GC()
		var base runtime.MemStats
		runtime.ReadMemStats(&base)
		var peak atomic.Uint64
		stop := make(chan struct{})
		sampled := make(chan struct{})
		go func() {
			defer close(sampled)
			var m runtime.MemStats
			for {
				runtime.ReadMemStats(&m)
				if m.HeapInuse > peak.Load() {
					peak.Store(m.HeapInuse)
				}
				select {
				case <-stop:
					return
				case <-time.After(2 * time.Millisecond):
				}
			}
		}()
		var wg sync.WaitGroup
		var failed atomic.Int64
		for range n {
			wg.Go(func() {
				if _, _, err := svc.Login(client("198.51.100.4"), "flood@example.com", goodPassword); err != nil {
					failed.Add(1)
				}
			})
		}
		wg.Wait()
		close(stop)
		<-sampled
		b.ReportMetric(float64(peak.Load()-min(peak.Load(), base.HeapInuse))/(1<<20), "peak-MiB")
		b.ReportMetric(float64(failed.Load()), "failed")
	}
}

// BenchmarkLoginFlood500 is 500 concurrent logins with the default cap on
// concurrent hashes (one per CPU): memory stays bounded.
func BenchmarkLoginFlood500(b *testing.B) { loginFlood(b, 0, 500) }

// BenchmarkLoginFlood500Cap16Baseline is the same flood with 16 hashes
// allowed at once, to show how memory follows the cap.
func BenchmarkLoginFlood500Cap16Baseline(b *testing.B) { loginFlood(b, 16, 500) }

// BenchmarkLoginWrongPassword and BenchmarkLoginUnknownEmail take the same
// time: the answer does not reveal whether the account exists.
func BenchmarkLoginWrongPassword(b *testing.B) {
	svc := floodService(b, 0)
	for b.Loop() {
		if _, _, err := svc.Login(client("198.51.100.5"), "flood@example.com", "not the password at all"); err == nil {
			b.Fatal("wrong password accepted")
		}
	}
}

// BenchmarkLoginUnknownEmail: see BenchmarkLoginWrongPassword.
func BenchmarkLoginUnknownEmail(b *testing.B) {
	svc := floodService(b, 0)
	for b.Loop() {
		if _, _, err := svc.Login(client("198.51.100.6"), "nobody@example.com", "not the password at all"); err == nil {
			b.Fatal("unknown email accepted")
		}
	}
}
