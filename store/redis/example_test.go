package redis_test

import (
	"context"
	"log"
	"os"
	"strings"

	goredis "github.com/redis/go-redis/v9"

	"github.com/adshare/adshare"
	"github.com/adshare/adshare/decision/decisiontest"
	"github.com/adshare/adshare/store/memory"
	"github.com/adshare/adshare/store/redis"
)

// Open connects to one Redis; Shared is what the instances of a fleet
// share through it (rate limits, the revocation list, one-time values,
// the bus, burst counts, live figures, the realtime broker), in the shape
// adshare.Config.Shared takes. It needs a server, so it has no Output to
// check.
func ExampleOpen() {
	ctx := context.Background()
	rc, err := redis.Open(ctx, os.Getenv("REDIS_URL"), &redis.Config{Prefix: "myapp:"})
	if err != nil {
		log.Fatal(err)
	}
	app, err := adshare.New(&adshare.Config{Store: memory.New(), Shared: rc.Shared(nil), Decider: &decisiontest.Fake{}})
	if err != nil {
		log.Fatal(err)
	}
	if err := app.Start(ctx); err != nil { // subscribes the revocation list
		log.Fatal(err)
	}
	defer app.Stop(ctx) // and closes rc
}

// OpenCluster connects to a Redis Cluster from any of its nodes; every
// part of the Client works on it (see the package doc).
func ExampleOpenCluster() {
	ctx := context.Background()
	rc, err := redis.OpenCluster(ctx, strings.Split(os.Getenv("REDIS_CLUSTER_ADDRS"), ","), &redis.Config{
		Prefix:   "myapp:", // no { } in the prefix: the keys' own hash tags pick the slots
		Password: os.Getenv("REDIS_CLUSTER_PASSWORD"),
	})
	if err != nil {
		log.Fatal(err)
	}
	defer rc.Stop(ctx)
	log.Print(rc.Ping(ctx)) // every master answers
}

// New wraps a go-redis client the host already has (a single server, a
// Sentinel failover client or a cluster client): Stop leaves it open.
func ExampleNew() {
	ctx := context.Background()
	rdb := goredis.NewUniversalClient(&goredis.UniversalOptions{
		Addrs:                 []string{"10.0.0.1:6379", "10.0.0.2:6379", "10.0.0.3:6379"}, // two or more: a cluster client
		ContextTimeoutEnabled: true,
	})
	defer rdb.Close()
	rc := redis.New(rdb, &redis.Config{Prefix: "myapp:"})
	limiter := rc.LeasedLimiter(&redis.LeasedLimiterOptions{Fallback: memory.NewLimiter()})
	_ = limiter // the API-wide limiter of transport.Config, shared by the fleet
	log.Print(rc.Ping(ctx))
}
