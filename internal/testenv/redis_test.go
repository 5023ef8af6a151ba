package testenv

import (
	"fmt"
	"strings"
	"testing"
)

// recordingTB is a testing.TB whose Fatalf and Skip are recorded rather
// than ending the test, to check what a helper does without a server.
type recordingTB struct {
	testing.TB
	fatal, skipped string
}

func (r *recordingTB) Helper()                           {}
func (r *recordingTB) Fatalf(format string, args ...any) { r.fatal = fmt.Sprintf(format, args...) }
func (r *recordingTB) Skip(args ...any) {
	if r.fatal == "" { // a real Fatalf would have ended the test
		r.skipped = fmt.Sprint(args...)
	}
}

// Without the cluster's addresses the cluster suites skip, saying what to
// set; under CI they fail instead, so CI cannot pass without a cluster.
func TestRedisClusterAddrsFailsUnderCIWithoutTheVariable(t *testing.T) {
	t.Setenv(RedisClusterAddrsEnv, "")

	t.Setenv(ciEnv, "")
	local := &recordingTB{TB: t}
	addrs, _ := RedisClusterAddrs(local)
	if addrs != nil || local.fatal != "" || local.skipped == "" {
		t.Fatalf("without CI: addrs %v, fatal %q, skipped %q; want a skip", addrs, local.fatal, local.skipped)
	}

	t.Setenv(ciEnv, "true")
	ci := &recordingTB{TB: t}
	addrs, _ = RedisClusterAddrs(ci)
	if addrs != nil || ci.fatal == "" || ci.skipped != "" {
		t.Fatalf("under CI: addrs %v, fatal %q, skipped %q; want a failure", addrs, ci.fatal, ci.skipped)
	}
	for _, want := range []string{RedisClusterAddrsEnv, ".ci/redis-cluster.sh"} {
		if !contains(ci.fatal, want) {
			t.Errorf("the failure %q does not name %s", ci.fatal, want)
		}
	}
}

func TestRedisClusterAddrsSplitsTheList(t *testing.T) {
	t.Setenv(RedisClusterAddrsEnv, " 127.0.0.1:7001, 127.0.0.1:7002,,127.0.0.1:7003 ")
	rec := &recordingTB{TB: t}
	addrs, prefix := RedisClusterAddrs(rec)
	if fmt.Sprint(addrs) != "[127.0.0.1:7001 127.0.0.1:7002 127.0.0.1:7003]" {
		t.Fatalf("addrs %q", addrs)
	}
	if prefix == "" || contains(prefix, "{") || contains(prefix, "}") {
		t.Fatalf("prefix %q: want one without a hash tag", prefix)
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
