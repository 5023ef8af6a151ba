package postgres_test

import (
	"context"
	"encoding/json"
	"sync/atomic"
	"testing"
	"time"

	"github.com/adshare/adshare/internal/jobs"
	"github.com/adshare/adshare/store/postgres/postgrestest"
)

// BenchmarkJobsEnqueue inserts jobs from parallel callers, none running.
func BenchmarkJobsEnqueue(b *testing.B) {
	db := postgrestest.New(b)
	q, err := db.Jobs(nil)
	if err != nil {
		b.Fatal(err)
	}
	if err := q.Register("bench.noop", func(context.Context, json.RawMessage) error { return nil }, nil); err != nil {
		b.Fatal(err)
	}
	enqueueParallel(b, q)
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "jobs/s")
}

// BenchmarkJobsEnqueueAndRun inserts b.N jobs from parallel callers into a
// started queue (the default config) and waits until all have run: the
// rate from the first insert to the last completion. For jobs this short
// River's fetch cooldown bounds it: Workers jobs per 100ms.
func BenchmarkJobsEnqueueAndRun(b *testing.B) {
	ctx := context.Background()
	db := postgrestest.New(b)
	q, err := db.Jobs(nil)
	if err != nil {
		b.Fatal(err)
	}
	var ran atomic.Int64
	all := make(chan struct{})
	n := int64(b.N)
	if err := q.Register("bench.noop", func(context.Context, json.RawMessage) error {
		if ran.Add(1) == n {
			close(all)
		}
		return nil
	}, nil); err != nil {
		b.Fatal(err)
	}
	if err := q.Start(ctx); err != nil {
		b.Fatal(err)
	}
	enqueueParallel(b, q)
	select {
	case <-all:
	case <-time.After(5 * time.Minute):
		b.Fatalf("%d of %d jobs ran", ran.Load(), n)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "jobs/s")
}

// enqueueParallel times b.N enqueues of bench.noop from parallel callers.
func enqueueParallel(b *testing.B, q jobs.Queue) {
	ctx := context.Background()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := q.Enqueue(ctx, "bench.noop", nil, nil); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
