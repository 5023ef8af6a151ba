package redis

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/adshare/adshare/analytics"
)

// burstShards is how many hashes hold one burst window's counts. A key per
// viewer would put millions of short-lived keys in the key space, which
// every SCAN (the revocation list's loads) must then walk; one hash per
// window would grow so large that its expiry (a blocking delete unless
// lazyfree-lazy-expire is on) stalls the server. Split in 32, a window
// seen by a million viewers is 32 hashes of some 30,000 fields.
const burstShards = 32

// BurstCounter is analytics.BurstCounter in Redis, shared by every
// instance. A window's counts are fields of burstShards hashes (a member's
// shard chosen by a hash of its name) whose expiry every add extends:
// reading a batch's counts is one pipeline of an HMGET per hash touched,
// adding them one pipeline of a script call per hash (HINCRBY per member,
// then PEXPIRE). Each hash is one key, so a Redis Cluster spreads a window over
// its nodes.
type BurstCounter struct {
	rdb    goredis.UniversalClient
	prefix string
}

var _ analytics.BurstCounter = (*BurstCounter)(nil)

// BurstCounter returns the burst counter on this client.
func (c *Client) BurstCounter() *BurstCounter {
	return &BurstCounter{rdb: c.rdb, prefix: c.prefix + "bursts:"}
}

// hashOf is the Redis key of the hash holding k's count.
func (b *BurstCounter) hashOf(k analytics.BurstKey) string {
	h := fnv.New32a()
	_, _ = h.Write([]byte(k.Member))
	return b.prefix + k.Window + ":" + strconv.Itoa(int(h.Sum32()%burstShards))
}

// byHash groups keys by the hash holding them, in first-seen order of the
// hashes; each group lists its keys' positions in keys.
func (b *BurstCounter) byHash(keys []analytics.BurstKey) (hashes []string, positions map[string][]int) {
	positions = map[string][]int{}
	for i, k := range keys {
		h := b.hashOf(k)
		if _, ok := positions[h]; !ok {
			hashes = append(hashes, h)
		}
		positions[h] = append(positions[h], i)
	}
	return hashes, positions
}

// Counts implements analytics.BurstCounter.
func (b *BurstCounter) Counts(ctx context.Context, keys []analytics.BurstKey) ([]int64, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	hashes, positions := b.byHash(keys)
	cmds := make([]*goredis.SliceCmd, len(hashes))
	_, err := b.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, h := range hashes {
			members := make([]string, len(positions[h]))
			for j, at := range positions[h] {
				members[j] = keys[at].Member
			}
			cmds[i] = p.HMGet(ctx, h, members...)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("redis: burst counts: %w", err)
	}
	out := make([]int64, len(keys))
	for i, h := range hashes {
		vals := cmds[i].Val()
		if len(vals) != len(positions[h]) {
			return nil, fmt.Errorf("redis: burst counts: %d values for %d fields", len(vals), len(positions[h]))
		}
		for j, v := range vals {
			k := keys[positions[h][j]]
			switch v := v.(type) {
			case nil:
			case string:
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					return nil, fmt.Errorf("redis: burst count of %q in %q: %w", k.Member, k.Window, err)
				}
				out[positions[h][j]] = n
			default:
				return nil, fmt.Errorf("redis: burst count of %q in %q: unexpected %T", k.Member, k.Window, v)
			}
		}
	}
	return out, nil
}

// addBurstsScript adds to one hash's counts and extends its expiry:
// KEYS[1] the hash, ARGV[1] the ttl in milliseconds, then member and
// increment pairs. One call per hash instead of a command per viewer.
var addBurstsScript = goredis.NewScript(`
for i = 2, #ARGV, 2 do
  redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1])
end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 0
`)

// isNoScript reports whether err is Redis refusing an EVALSHA of a
// script it does not hold.
func isNoScript(err error) bool {
	return err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT")
}

// Add implements analytics.BurstCounter.
func (b *BurstCounter) Add(ctx context.Context, keys []analytics.BurstKey, ttl time.Duration) error {
	if len(keys) == 0 {
		return nil
	}
	if ttl < time.Millisecond {
		return errors.New("redis: burst counts need a ttl of at least a millisecond")
	}
	// A key listed n times (a network's, once per event) is one HINCRBY n.
	adds := make(map[analytics.BurstKey]int64, len(keys))
	var distinct []analytics.BurstKey
	for _, k := range keys {
		if adds[k] == 0 {
			distinct = append(distinct, k)
		}
		adds[k]++
	}
	hashes, positions := b.byHash(distinct)
	ms := strconv.FormatInt(ttl.Milliseconds(), 10)
	args := make([][]any, len(hashes))
	for i, h := range hashes {
		args[i] = append(make([]any, 0, 1+2*len(positions[h])), ms)
		for _, at := range positions[h] {
			args[i] = append(args[i], distinct[at].Member, adds[distinct[at]])
		}
	}
	cmds := make([]*goredis.Cmd, len(hashes))
	_, err := b.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, h := range hashes {
			cmds[i] = addBurstsScript.EvalSha(ctx, p, []string{h}, args[i]...)
		}
		return nil
	})
	if err != nil && isNoScript(err) {
		// The server has not seen the script yet, or has lost it: send
		// it whole to the hashes it was refused for (an EVALSHA refused
		// so ran nothing).
		_, err = b.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
			for i, h := range hashes {
				if isNoScript(cmds[i].Err()) {
					addBurstsScript.Eval(ctx, p, []string{h}, args[i]...)
				} else if err := cmds[i].Err(); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err != nil {
		return fmt.Errorf("redis: add burst counts: %w", err)
	}
	return nil
}
