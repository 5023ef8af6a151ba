package redis

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/adshare/adshare/transport/realtime"
)

// Defaults of BrokerOptions.
const (
	DefaultBrokerHistorySize = 100
	DefaultBrokerHistoryTTL  = 10 * time.Minute
	DefaultBrokerMetaTTL     = 24 * time.Hour
)

// BrokerOptions configures Client.Broker; zero fields take the defaults.
type BrokerOptions struct {
	// HistorySize is how many publications each topic's stream keeps
	// (trimmed exactly). Default 100.
	HistorySize int
	// HistoryTTL drops a stream nothing was published on for this long.
	// Default 10 minutes.
	HistoryTTL time.Duration
	// MetaTTL drops a topic's sequence and epoch after this long without a
	// publication; the next one starts a new epoch. Default 24 hours.
	MetaTTL time.Duration
	// Subscription says how the subscription is kept (nil: defaults).
	Subscription *SubscriptionOptions
}

// Broker is a realtime.Broker shared by every instance through Redis:
// PUBLISH on one channel ("<prefix>rt") for fan-out, and per topic a hash
// of its sequence and epoch ("<prefix>rt:{<topic>}:m") beside a stream of
// its recent publications ("<prefix>rt:{<topic>}:s", entry ids 0-<seq>),
// in one hash slot so that a Redis Cluster runs each script on one node.
// Every publication of a topic, kept or not, is published from that node,
// so a topic's publications stay in order on a cluster too.
//
// A publication kept in history is numbered, appended and published by one
// script, so sequences have no gaps and every subscriber sees them in
// order. When a topic's hash is lost (expiry, a flush, a restart without
// persistence) the next use starts a new epoch and clears the stream:
// clients that resume with the old epoch are told to reload, never given a
// history that does not follow theirs. After its subscription is restored
// the broker tells the hub that publications may have been missed, and the
// hub reads them back from the streams. Create it with Client.Broker.
type Broker struct {
	rdb     goredis.UniversalClient
	prefix  string // <prefix>rt
	opts    BrokerOptions
	subOpts *SubscriptionOptions
}

var _ realtime.Broker = (*Broker)(nil)

// Broker returns the realtime broker on this client; a nil opts means every
// default.
func (c *Client) Broker(opts *BrokerOptions) *Broker {
	var o BrokerOptions
	if opts != nil {
		o = *opts
	}
	o.HistorySize = cmp.Or(o.HistorySize, DefaultBrokerHistorySize)
	o.HistoryTTL = cmp.Or(o.HistoryTTL, DefaultBrokerHistoryTTL)
	o.MetaTTL = cmp.Or(o.MetaTTL, DefaultBrokerMetaTTL)
	return &Broker{rdb: c.rdb, prefix: c.prefix + "rt", opts: o, subOpts: o.Subscription}
}

func (b *Broker) keys(topic string) []string {
	base := b.prefix + ":{" + topic + "}:"
	return []string{base + "m", base + "s"}
}

func newEpoch() string {
	e := make([]byte, 8)
	_, _ = rand.Read(e)
	return hex.EncodeToString(e)
}

// epochLua gets the topic's epoch or starts a new one (clearing the
// stream of the lost epoch); it leaves `epoch` and `seq` set.
const epochLua = `
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then
  epoch = ARGV[1]
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'epoch', epoch, 'seq', 0)
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
local seq = tonumber(redis.call('HGET', KEYS[1], 'seq'))
`

// publishScript numbers, appends and publishes one publication.
// KEYS: meta, stream. ARGV: new epoch, meta TTL ms, stream TTL ms, history
// size, channel, topic, data. Returns {seq, epoch}.
var publishScript = goredis.NewScript(epochLua + `
seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[4], '0-' .. seq, 'd', ARGV[7])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
redis.call('PUBLISH', ARGV[5], ARGV[6] .. '\n' .. seq .. '\n' .. epoch .. '\n' .. ARGV[7])
return {seq, epoch}
`)

// ephemeralScript publishes one publication kept in no history. It touches
// no key, but names the topic's meta key so that it runs on the node of the
// topic's slot, where publishScript runs: on a Redis Cluster a node forwards
// what it publishes to every other node in order, so a topic's
// publications, kept or not, reach every subscriber in the order they were
// made. (A plain PUBLISH would go to the node of the channel's slot and
// could overtake, or be overtaken by, the topic's kept publications.)
// KEYS: meta. ARGV: channel, message.
var ephemeralScript = goredis.NewScript(`
redis.call('PUBLISH', ARGV[1], ARGV[2])
return 0
`)

// positionScript returns {seq, epoch}. KEYS: meta, stream. ARGV: new
// epoch, meta TTL ms.
var positionScript = goredis.NewScript(epochLua + `
return {seq, epoch}
`)

// historyScript returns {seq, epoch, status, data...}: status "ok" with
// the data after since, or "gone". KEYS: meta, stream. ARGV: new epoch,
// meta TTL ms, since epoch, since seq, limit.
var historyScript = goredis.NewScript(epochLua + `
local since = tonumber(ARGV[4])
if ARGV[3] ~= epoch or since > seq or seq - since > tonumber(ARGV[5]) then
  return {seq, epoch, 'gone'}
end
local out = {seq, epoch, 'ok'}
if seq == since then return out end
local entries = redis.call('XRANGE', KEYS[2], '0-' .. (since + 1), '+', 'COUNT', seq - since)
if #entries ~= seq - since or entries[1][1] ~= '0-' .. (since + 1) then
  return {seq, epoch, 'gone'}
end
for _, e in ipairs(entries) do out[#out + 1] = e[2][2] end
return out
`)

// Publish implements realtime.Broker.
func (b *Broker) Publish(ctx context.Context, topic string, data []byte, opts realtime.PublishOptions) (realtime.Position, error) {
	if !opts.History {
		err := ephemeralScript.Run(ctx, b.rdb, b.keys(topic)[:1], b.prefix, topic+"\n0\n\n"+string(data)).Err()
		if err != nil {
			return realtime.Position{}, fmt.Errorf("redis: broker publish: %w", err)
		}
		return realtime.Position{}, nil
	}
	res, err := publishScript.Run(ctx, b.rdb, b.keys(topic), newEpoch(), b.opts.MetaTTL.Milliseconds(),
		b.opts.HistoryTTL.Milliseconds(), b.opts.HistorySize, b.prefix, topic, string(data)).Slice()
	if err != nil {
		return realtime.Position{}, fmt.Errorf("redis: broker publish: %w", err)
	}
	return position(res)
}

func position(res []any) (realtime.Position, error) {
	if len(res) < 2 {
		return realtime.Position{}, errors.New("redis: broker: short script answer")
	}
	seq, _ := res[0].(int64)
	epoch, _ := res[1].(string)
	return realtime.Position{Seq: uint64(seq), Epoch: epoch}, nil
}

// Position implements realtime.Broker.
func (b *Broker) Position(ctx context.Context, topic string) (realtime.Position, error) {
	res, err := positionScript.Run(ctx, b.rdb, b.keys(topic), newEpoch(), b.opts.MetaTTL.Milliseconds()).Slice()
	if err != nil {
		return realtime.Position{}, fmt.Errorf("redis: broker position: %w", err)
	}
	return position(res)
}

// History implements realtime.Broker.
func (b *Broker) History(ctx context.Context, topic string, since realtime.Position, limit int) ([]realtime.Publication, realtime.Position, error) {
	res, err := historyScript.Run(ctx, b.rdb, b.keys(topic), newEpoch(), b.opts.MetaTTL.Milliseconds(),
		since.Epoch, since.Seq, limit).Slice()
	if err != nil {
		return nil, realtime.Position{}, fmt.Errorf("redis: broker history: %w", err)
	}
	pos, err := position(res)
	if err != nil {
		return nil, pos, err
	}
	if len(res) < 3 || res[2] != "ok" {
		return nil, pos, realtime.ErrUnrecoverable
	}
	pubs := make([]realtime.Publication, 0, len(res)-3)
	for i, d := range res[3:] {
		s, _ := d.(string)
		pubs = append(pubs, realtime.Publication{Topic: topic, Seq: since.Seq + uint64(i) + 1, Epoch: pos.Epoch, Data: []byte(s)})
	}
	return pubs, pos, nil
}

// Subscribe implements realtime.Broker. After every restoration of the
// subscription, handle gets a Publication without a Topic.
func (b *Broker) Subscribe(ctx context.Context, handle func(realtime.Publication)) (func(), error) {
	sub := newSubscription(b.rdb, "redis realtime broker", b.subOpts, b.prefix)
	subscribed := false
	sub.onSubscribed = func(context.Context) error {
		if subscribed {
			handle(realtime.Publication{})
		}
		subscribed = true
		return nil
	}
	sub.onMessage = func(_, payload string) {
		if p, ok := parsePublication(payload); ok {
			handle(p)
		}
	}
	if err := sub.start(ctx); err != nil {
		return nil, fmt.Errorf("redis: broker subscribe: %w", err)
	}
	return func() { _ = sub.stop(context.Background()) }, nil
}

// parsePublication reads "<topic>\n<seq>\n<epoch>\n<data>".
func parsePublication(msg string) (realtime.Publication, bool) {
	parts := strings.SplitN(msg, "\n", 4)
	if len(parts) != 4 || parts[0] == "" {
		return realtime.Publication{}, false
	}
	seq, err := strconv.ParseUint(parts[1], 10, 64)
	if err != nil {
		return realtime.Publication{}, false
	}
	return realtime.Publication{Topic: parts[0], Seq: seq, Epoch: parts[2], Data: []byte(parts[3])}, true
}
