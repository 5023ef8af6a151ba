package transport

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/analytics"
	"github.com/adshare/adshare/analytics/tracking"
	"github.com/adshare/adshare/auth"
	"github.com/adshare/adshare/store/memory"
)

// freeTier is a TierSource that puts every owner on the first default tier.
type freeTier struct{}

func (freeTier) TierAt(context.Context, uuid.UUID, time.Time) (auth.Tier, error) {
	return auth.DefaultTiers()[0], nil
}

// BenchmarkServeEvent measures what the API itself spends on one
// single-event POST /events, in process and on the memory store, so that
// neither the network nor the database is in the figure: the middleware,
// decoding, the token, the filters, the group commit's hand-off and the
// answer. Its baseline is a hello-world handler behind the same
// middleware (BenchmarkServeHelloBaseline).
func BenchmarkServeEvent(b *testing.B) {
	key := make([]byte, 32)
	sealer, err := tracking.NewSealer([][]byte{key}, nil)
	require.NoError(b, err)
	svc, err := analytics.NewService(analytics.Config{
		Store: memory.New(), Sealer: sealer, Tiers: freeTier{}, Bursts: memory.NewBurstCounter(),
	})
	require.NoError(b, err)
	b.Cleanup(func() { _ = svc.Stop(context.Background()) })
	h, err := New(Config{Analytics: svc, DisableAccessLog: true})
	require.NoError(b, err)

	owner := uuid.Must(uuid.NewV7())
	now := time.Now()
	bodies := make([]string, 0, b.N) // one token per request: none is a retry
	for i := range b.N {
		tok, err := sealer.Seal(tracking.Payload{
			ID: uuid.Must(uuid.NewV7()),
			Ad: tracking.Ad{Owner: owner, ViewerKey: strconv.Itoa(i), Placement: "main", Source: "local",
				AdID: "ad-" + strconv.Itoa(i%50), AdvertiserID: "adv-1", PriceModel: "cpm", PriceMicros: 2_000_000, Billable: true,
				IssuedAt: now.Add(-5 * time.Second)},
			ExpiresAt: now.Add(time.Hour),
		})
		require.NoError(b, err)
		bodies = append(bodies, `{"type":"impression","token":"`+tok+`"}`)
	}
	var next atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(64) // group commit needs requests in flight
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := int(next.Add(1)) - 1
			serveOne(b, h, bodies[i], i)
		}
	})
}

// BenchmarkServeHelloBaseline is BenchmarkServeEvent's baseline: a handler
// that answers a constant JSON object, behind the API's middleware.
func BenchmarkServeHelloBaseline(b *testing.B) {
	hello := route{method: http.MethodPost, path: "/hello", handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"hello":"world"}`))
	})}
	h, err := newHandler(Config{DisableAccessLog: true}, []route{hello})
	require.NoError(b, err)
	var next atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(64)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			serveOne(b, h, `{"type":"impression"}`, int(next.Add(1)))
		}
	})
}

// serveOne posts body to h as the n-th device would and fails b unless the
// answer is 200 and, for an event, says it was accepted as valid: the
// figure is the full write path's, not a refusal's.
func serveOne(b *testing.B, h http.Handler, body string, n int) {
	path := "/events"
	if !strings.Contains(body, "token") {
		path = "/hello"
	}
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", testAppUserAgent)
	req.RemoteAddr = "10." + strconv.Itoa(n>>8&0xff) + "." + strconv.Itoa(n&0xff) + ".1:4321"
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != http.StatusOK || path == "/events" && !strings.Contains(w.Body.String(), `"status":"accepted","valid":true`) {
		b.Fatalf("%s: %d %s", path, w.Code, w.Body)
	}
}
