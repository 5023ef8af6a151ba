package redis

import (
	"context"
	"errors"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/adshare/adshare/auth"
)

// OneTimeStore is an auth.OneTimeStore in Redis: PutOnce is SET NX PX and
// Take is GETDEL (Redis 6.2 or later). Keys live under the client's prefix
// followed by "once:". Create it with Client.OneTimeStore.
//
// ttls are truncated to whole milliseconds, and a ttl under one millisecond
// is an error, as in store/memory.
type OneTimeStore struct {
	rdb    goredis.UniversalClient
	prefix string
}

var _ auth.OneTimeStore = (*OneTimeStore)(nil)

// OneTimeStore returns the client's one-time store.
func (c *Client) OneTimeStore() *OneTimeStore {
	return &OneTimeStore{rdb: c.rdb, prefix: c.prefix + "once:"}
}

// PutOnce implements auth.OneTimeStore. It returns auth.ErrOneTimeKeyExists
// when key is held, an error when ttl is under one millisecond, and an error
// when Redis does not answer.
func (s *OneTimeStore) PutOnce(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if ttl < time.Millisecond {
		return fmt.Errorf("redis: one-time store: ttl %v is under the 1ms minimum", ttl)
	}
	ok, err := s.rdb.SetNX(ctx, s.prefix+key, value, ttl.Truncate(time.Millisecond)).Result()
	if err != nil {
		return fmt.Errorf("redis: one-time put: %w", err)
	}
	if !ok {
		return auth.ErrOneTimeKeyExists
	}
	return nil
}

// Take implements auth.OneTimeStore. It returns an error when Redis does not
// answer.
func (s *OneTimeStore) Take(ctx context.Context, key string) ([]byte, bool, error) {
	v, err := s.rdb.GetDel(ctx, s.prefix+key).Bytes()
	if errors.Is(err, goredis.Nil) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("redis: one-time take: %w", err)
	}
	return v, true, nil
}
