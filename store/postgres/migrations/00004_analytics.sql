-- Analytics: tracked events, partitioned by day of issue; hourly rollups
-- for reports; per-ad delivery totals for the local engine.
--
-- The checks are backstops: both stores check events first
-- (store/internal/rollup CheckEvents applies these same rules).

-- +goose Up

-- One row per event. Events are partitioned by the tracking token's issue
-- time (issued_at), so all events of one token share a partition and the
-- primary key, which must hold the partition key, is still unique per
-- token: a tracking id names one token, and so one issue time.
CREATE TABLE events (
    issued_at             timestamptz NOT NULL,
    tracking_id           uuid        NOT NULL,
    type                  text        NOT NULL,
    name                  text        NOT NULL DEFAULT '',
    owner_id              uuid        NOT NULL,
    viewer_id             uuid,                   -- NULL: anonymous
    viewer_key            text        NOT NULL DEFAULT '',
    placement             text        NOT NULL DEFAULT '',
    source                text        NOT NULL DEFAULT '',
    ad_id                 text        NOT NULL DEFAULT '',
    creative_id           text        NOT NULL DEFAULT '',
    campaign_id           text        NOT NULL DEFAULT '',
    advertiser_id         text        NOT NULL DEFAULT '',
    price_model           text        NOT NULL DEFAULT '',
    price_micros          bigint      NOT NULL DEFAULT 0,
    occurred_at           timestamptz NOT NULL,
    received_at           timestamptz NOT NULL,
    billable              boolean     NOT NULL,
    valid                 boolean     NOT NULL,
    rule                  text        NOT NULL DEFAULT '',
    spend_micros          bigint      NOT NULL DEFAULT 0,
    owner_earnings_micros bigint      NOT NULL DEFAULT 0,
    owner_share_bp        integer     NOT NULL DEFAULT 0,
    value_micros          bigint      NOT NULL DEFAULT 0,
    client_prefix         text        NOT NULL DEFAULT '',
    user_agent            text        NOT NULL DEFAULT '',
    CONSTRAINT events_pkey PRIMARY KEY (issued_at, tracking_id, type, name),
    CONSTRAINT events_type_check CHECK (type IN ('impression', 'click', 'conversion')),
    CONSTRAINT events_spend_check CHECK (spend_micros >= 0),
    CONSTRAINT events_earnings_check CHECK (owner_earnings_micros BETWEEN 0 AND spend_micros),
    CONSTRAINT events_share_check CHECK (owner_share_bp BETWEEN 0 AND 10000),
    CONSTRAINT events_rule_check CHECK (valid = (rule = ''))
) PARTITION BY RANGE (issued_at);

-- Catches every event outside the daily partitions, so an insert never
-- fails for want of a partition. Creating a day's partition moves that
-- day's rows out of it.
CREATE TABLE events_default PARTITION OF events DEFAULT;

-- ImpressionTimes looks impressions up by tracking id alone (it does not
-- know their issue time): one small index per partition, covering.
CREATE INDEX events_impression_idx ON events (tracking_id) INCLUDE (occurred_at) WHERE type = 'impression';

-- ensure_event_partitions creates the daily partitions (UTC days) from
-- from_day to to_day inclusive that do not exist yet, named
-- events_yYYYYmMMdDD, and returns how many it created. Rows of those days
-- waiting in events_default move into their partition. It is idempotent and
-- safe to run concurrently: an advisory lock (per schema) serialises
-- callers. Each partition is built detached and then attached, which locks
-- the parent table only against schema changes, not against inserts.
-- +goose StatementBegin
CREATE FUNCTION ensure_event_partitions(from_day date, to_day date) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    d       date;
    part    text;
    lo      timestamptz;
    hi      timestamptz;
    created integer := 0;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('adshare.events.partitions:' || current_schema()));
    d := from_day;
    WHILE d <= to_day LOOP
        part := format('events_y%sm%sd%s', to_char(d, 'YYYY'), to_char(d, 'MM'), to_char(d, 'DD'));
        IF to_regclass(quote_ident(part)) IS NULL THEN
            lo := d::timestamp AT TIME ZONE 'UTC';
            hi := (d + 1)::timestamp AT TIME ZONE 'UTC';
            EXECUTE format('CREATE TABLE %I (LIKE events INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', part);
            -- The bound as a check lets ATTACH skip scanning the new table.
            EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I CHECK (issued_at >= %L AND issued_at < %L)',
                           part, part || '_bound', lo, hi);
            EXECUTE format('WITH moved AS (DELETE FROM events_default WHERE issued_at >= %L AND issued_at < %L RETURNING *)
                            INSERT INTO %I SELECT * FROM moved', lo, hi, part);
            EXECUTE format('ALTER TABLE events ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)', part, lo, hi);
            EXECUTE format('ALTER TABLE %I DROP CONSTRAINT %I', part, part || '_bound');
            created := created + 1;
        END IF;
        d := d + 1;
    END LOOP;
    RETURN created;
END;
$$;
-- +goose StatementEnd

SELECT ensure_event_partitions((now() AT TIME ZONE 'UTC')::date - 2, (now() AT TIME ZONE 'UTC')::date + 7);

-- Hourly rollups, by the UTC hour in which events occurred. Fill counts
-- have rows of their own, with ad_key and advertiser_id empty; events use
-- ad_key 'source:adID'.
CREATE TABLE rollups_hourly (
    hour                  timestamptz NOT NULL,
    owner_id              uuid        NOT NULL,
    ad_key                text        NOT NULL,
    advertiser_id         text        NOT NULL,
    requested             bigint      NOT NULL DEFAULT 0,
    filled                bigint      NOT NULL DEFAULT 0,
    impressions           bigint      NOT NULL DEFAULT 0,
    valid_impressions     bigint      NOT NULL DEFAULT 0,
    billable_impressions  bigint      NOT NULL DEFAULT 0,
    clicks                bigint      NOT NULL DEFAULT 0,
    valid_clicks          bigint      NOT NULL DEFAULT 0,
    billable_clicks       bigint      NOT NULL DEFAULT 0,
    conversions           bigint      NOT NULL DEFAULT 0,
    spend_micros          bigint      NOT NULL DEFAULT 0,
    owner_earnings_micros bigint      NOT NULL DEFAULT 0,
    CONSTRAINT rollups_hourly_pkey PRIMARY KEY (hour, owner_id, ad_key, advertiser_id),
    CONSTRAINT rollups_hourly_counts_check CHECK (
        requested >= 0 AND filled BETWEEN 0 AND requested
        AND impressions >= 0 AND valid_impressions BETWEEN 0 AND impressions
        AND billable_impressions BETWEEN 0 AND valid_impressions
        AND clicks >= 0 AND valid_clicks BETWEEN 0 AND clicks
        AND billable_clicks BETWEEN 0 AND valid_clicks
        AND conversions >= 0 AND spend_micros >= 0
        AND owner_earnings_micros BETWEEN 0 AND spend_micros)
) WITH (fillfactor = 70); -- counters change on every batch: room for HOT updates
-- Reports for one owner, or one advertiser, over a range of hours; the
-- primary key serves reports over everyone.
CREATE INDEX rollups_hourly_owner_idx ON rollups_hourly (owner_id, hour);
CREATE INDEX rollups_hourly_advertiser_idx ON rollups_hourly (advertiser_id, hour);

-- Invalid traffic per rule, on the same keys.
CREATE TABLE rollup_invalid_hourly (
    hour          timestamptz NOT NULL,
    owner_id      uuid        NOT NULL,
    ad_key        text        NOT NULL,
    advertiser_id text        NOT NULL,
    rule          text        NOT NULL,
    count         bigint      NOT NULL,
    CONSTRAINT rollup_invalid_hourly_pkey PRIMARY KEY (hour, owner_id, ad_key, advertiser_id, rule),
    CONSTRAINT rollup_invalid_hourly_check CHECK (rule <> '' AND count > 0)
) WITH (fillfactor = 70);
CREATE INDEX rollup_invalid_hourly_owner_idx ON rollup_invalid_hourly (owner_id, hour);
CREATE INDEX rollup_invalid_hourly_advertiser_idx ON rollup_invalid_hourly (advertiser_id, hour);

-- Delivery of the local engine's ads (Source 'local'; valid, billable
-- events only), kept as events arrive so that pacing never reads the
-- rollups. spend_today is the spend of spend_day (a UTC date), the latest
-- day with any.
CREATE TABLE ad_totals (
    ad_id       text   PRIMARY KEY,
    spend_day   date   NOT NULL,
    spend_today bigint NOT NULL DEFAULT 0,
    spend_total bigint NOT NULL DEFAULT 0,
    impressions bigint NOT NULL DEFAULT 0,
    clicks      bigint NOT NULL DEFAULT 0,
    CONSTRAINT ad_totals_counts_check CHECK (
        spend_today BETWEEN 0 AND spend_total AND impressions >= 0 AND clicks >= 0)
) WITH (fillfactor = 70);

-- Signups by creation time.
CREATE INDEX users_created_at_idx ON users (created_at);

-- +goose Down
DROP INDEX users_created_at_idx;
DROP TABLE ad_totals;
DROP TABLE rollup_invalid_hourly;
DROP TABLE rollups_hourly;
DROP TABLE events;
DROP FUNCTION ensure_event_partitions(date, date);
