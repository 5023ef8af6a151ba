// Command server is adshare's quick start: the whole API on one port, on
// embedded defaults (in-memory store) unless told to use PostgreSQL and
// Redis.
//
//	go run ./examples/server                        # 127.0.0.1:8080, memory store
//	DATABASE_URL=postgres://… REDIS_URL=redis://… go run ./examples/server -migrate-on-start
//	REDIS_CLUSTER_ADDRS=10.0.0.1:6379,10.0.0.2:6379 go run ./examples/server   # Redis Cluster instead of REDIS_URL
//	go run ./examples/server migrate up|down|status # needs DATABASE_URL
//	go run ./examples/server check                  # before a rollout: config, connections, keys, migrations
//	go run ./examples/server keys status|rotate     # data keys: values per key id, re-encryption (needs DATABASE_URL, data keys)
//	server probe http://127.0.0.1:8080/readyz       # a container healthcheck without curl
//
// Every flag can also be set through the environment variable named in its
// help text; a flag wins over its variable. Logs are colourised text on a
// terminal and JSON lines otherwise. SIGINT or SIGTERM stops the server
// gracefully: it stops accepting, lets requests in flight finish (up to the
// shutdown timeout) and closes its connections.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args, os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "adshare:", err)
		os.Exit(1)
	}
}
