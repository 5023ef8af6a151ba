package redis

import (
	"context"
	"fmt"
	"strings"

	"github.com/google/uuid"
)

// EraseUser removes the user from everything under the client's prefix:
// it SCANs every key, deletes those whose name holds the user's id (live
// figures, realtime topics and their history, rate-limit and burst
// counts), and removes from the others every value that holds it (string
// values, stream entries, hash fields, set, sorted-set and list members).
// It is privacy's "shared" erasure step for a fleet; it walks the whole
// keyspace of the prefix, so it runs as a background job, and it is
// idempotent.
func (c *Client) EraseUser(ctx context.Context, user uuid.UUID) error {
	id := user.String()
	iter := c.rdb.Scan(ctx, 0, c.prefix+"*", 500).Iterator()
	for iter.Next(ctx) {
		key := iter.Val()
		if strings.Contains(key, id) {
			if err := c.rdb.Del(ctx, key).Err(); err != nil {
				return fmt.Errorf("redis: erase: %w", err)
			}
			continue
		}
		if err := c.eraseInKey(ctx, key, id); err != nil {
			return fmt.Errorf("redis: erase: %w", err)
		}
	}
	if err := iter.Err(); err != nil {
		return fmt.Errorf("redis: erase: %w", err)
	}
	return nil
}

func (c *Client) eraseInKey(ctx context.Context, key, id string) error {
	typ, err := c.rdb.Type(ctx, key).Result()
	if err != nil {
		return err
	}
	switch typ {
	case "string":
		v, err := c.rdb.Get(ctx, key).Result()
		if err == nil && strings.Contains(v, id) {
			return c.rdb.Del(ctx, key).Err()
		}
	case "stream":
		msgs, err := c.rdb.XRange(ctx, key, "-", "+").Result()
		if err != nil {
			return err
		}
		for _, m := range msgs {
			if strings.Contains(fmt.Sprint(m.Values), id) {
				if err := c.rdb.XDel(ctx, key, m.ID).Err(); err != nil {
					return err
				}
			}
		}
	case "hash":
		fields, err := c.rdb.HGetAll(ctx, key).Result()
		if err != nil {
			return err
		}
		for f, v := range fields {
			if strings.Contains(f, id) || strings.Contains(v, id) {
				if err := c.rdb.HDel(ctx, key, f).Err(); err != nil {
					return err
				}
			}
		}
	case "set":
		members, err := c.rdb.SMembers(ctx, key).Result()
		if err != nil {
			return err
		}
		for _, m := range members {
			if strings.Contains(m, id) {
				if err := c.rdb.SRem(ctx, key, m).Err(); err != nil {
					return err
				}
			}
		}
	case "zset":
		members, err := c.rdb.ZRange(ctx, key, 0, -1).Result()
		if err != nil {
			return err
		}
		for _, m := range members {
			if strings.Contains(m, id) {
				if err := c.rdb.ZRem(ctx, key, m).Err(); err != nil {
					return err
				}
			}
		}
	case "list":
		items, err := c.rdb.LRange(ctx, key, 0, -1).Result()
		if err != nil {
			return err
		}
		for _, it := range items {
			if strings.Contains(it, id) {
				if err := c.rdb.LRem(ctx, key, 0, it).Err(); err != nil {
					return err
				}
			}
		}
	}
	return nil
}
