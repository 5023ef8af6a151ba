package transport

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
)

// handleHealthz answers 200 while the process can serve HTTP at all
// (liveness): it checks no dependency, so a database outage does not get
// every instance restarted.
func (s *server) handleHealthz() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
}

// handleReadyz runs every readiness check concurrently within the timeout:
// 200 when all pass, else a 503 problem naming the failed checks (the
// errors themselves go to the log, not to the client).
func (s *server) handleReadyz() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), s.cfg.ReadinessTimeout)
		defer cancel()
		results := make(map[string]string, len(s.cfg.ReadinessChecks))
		var (
			mu     sync.Mutex
			wg     sync.WaitGroup
			failed bool
		)
		for _, rc := range s.cfg.ReadinessChecks {
			wg.Go(func() {
				err := rc.Check(ctx)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					failed = true
					results[rc.Name] = "unavailable"
					s.metrics.checks.WithLabelValues(rc.Name, "unavailable").Inc()
					s.logger.WarnContext(ctx, "transport: readiness check failed",
						slog.String("check", rc.Name), slog.Any("error", err))
					return
				}
				results[rc.Name] = "ok"
				s.metrics.checks.WithLabelValues(rc.Name, "ok").Inc()
			})
		}
		wg.Wait()
		if failed {
			s.metrics.ready.Set(0)
			writeProblem(w, Problem{
				Type: problemTypePrefix + "not_ready", Title: http.StatusText(http.StatusServiceUnavailable),
				Status: http.StatusServiceUnavailable, Code: "not_ready", Detail: "a dependency is not reachable",
				RequestID: RequestIDFromContext(r.Context()), Checks: results,
			})
			return
		}
		s.metrics.ready.Set(1)
		writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "checks": results})
	})
}
