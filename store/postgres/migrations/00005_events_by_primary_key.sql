-- ImpressionTimes looks impressions up by the primary key (the token's
-- issue time and tracking id, which the analytics service has from the
-- token), in the partition of the token's day only. The index it used,
-- which every impression's insert had to maintain, goes.

-- +goose Up
DROP INDEX events_impression_idx;

-- +goose Down
CREATE INDEX events_impression_idx ON events (tracking_id) INCLUDE (occurred_at) WHERE type = 'impression';
