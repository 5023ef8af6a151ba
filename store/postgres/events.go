package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/adshare/adshare/analytics"
	"github.com/adshare/adshare/decision"
	"github.com/adshare/adshare/store/internal/rollup"
)

var _ analytics.Store = (*DB)(nil)

// writeEventsSQL stores a batch in one statement: one round trip, atomic
// without an explicit transaction, and the same whether or not some events
// were stored before. The batch comes as one array per column of the
// events table (eventArgs).
//
// The events not stored yet are inserted: a key already stored is skipped
// (ON CONFLICT DO NOTHING), and a concurrent insert of the same key waits
// for the other transaction and is then skipped, so each event is new
// exactly once. What exactly the inserted rows contribute is summed into
// the hourly rollups, the invalid-traffic rollups and the local ads'
// totals. The contribution of one event (the "fresh" CTE) is rollup.Of's
// rule, written in SQL so that it reads the rows the insert returns
// instead of a second copy of the batch; TestRollupsAgreeWithMemory holds
// the two to the same results. Ad totals follow rollup.AdRow.Merge: the
// batch's latest day per ad, that day's spend, and all spend in the total.
//
// Every upsert takes its rows in key order (bytewise, as rollup.Key orders
// them) and the events arrive in primary key order, so concurrent batches
// lock shared rows in the same order and cannot deadlock.
//
// The statement returns the 1-based positions of the events it did not
// insert (stored before): usually none.
//
// It replaced a transaction of BEGIN, the insert, the upserts (pipelined)
// and COMMIT: four round trips. BenchmarkWriteEvents measures it.
const writeEventsSQL = `
WITH inserted AS (
	INSERT INTO events (issued_at, tracking_id, type, name, owner_id, viewer_id, viewer_key, placement, source,
		ad_id, creative_id, campaign_id, advertiser_id, price_model, price_micros, occurred_at, received_at,
		billable, valid, rule, spend_micros, owner_earnings_micros, owner_share_bp, value_micros, client_prefix, user_agent)
	SELECT * FROM unnest($1::timestamptz[], $2::uuid[], $3::text[], $4::text[], $5::uuid[], $6::uuid[], $7::text[],
		$8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::text[], $15::bigint[],
		$16::timestamptz[], $17::timestamptz[], $18::boolean[], $19::boolean[], $20::text[], $21::bigint[],
		$22::bigint[], $23::integer[], $24::bigint[], $25::text[], $26::text[])
	ON CONFLICT DO NOTHING
	RETURNING tracking_id, type, name, owner_id, advertiser_id, rule, ad_id, occurred_at, source, valid, billable,
		spend_micros, owner_earnings_micros
), fresh AS (
	SELECT owner_id, advertiser_id, rule, ad_id,
		date_trunc('hour', occurred_at, 'UTC') AS hour, source || ':' || ad_id AS ad_key,
		(type = 'impression')::int AS impressions,
		(type = 'impression' AND valid)::int AS valid_impressions,
		(type = 'impression' AND valid AND billable)::int AS billable_impressions,
		(type = 'click')::int AS clicks,
		(type = 'click' AND valid)::int AS valid_clicks,
		(type = 'click' AND valid AND billable)::int AS billable_clicks,
		(type = 'conversion')::int AS conversions,
		CASE WHEN valid AND billable THEN spend_micros ELSE 0 END AS spend_micros,
		CASE WHEN valid AND billable THEN owner_earnings_micros ELSE 0 END AS owner_earnings_micros,
		NOT valid AS invalid, valid AND billable AND source = '` + rollup.LocalSource + `' AS counts_for_ad,
		(occurred_at AT TIME ZONE 'UTC')::date AS ad_day
	FROM inserted
), rollups AS (
	INSERT INTO rollups_hourly AS r (hour, owner_id, ad_key, advertiser_id, impressions, valid_impressions,
		billable_impressions, clicks, valid_clicks, billable_clicks, conversions, spend_micros, owner_earnings_micros)
	SELECT hour, owner_id, ad_key, advertiser_id, sum(impressions), sum(valid_impressions), sum(billable_impressions),
		sum(clicks), sum(valid_clicks), sum(billable_clicks), sum(conversions), sum(spend_micros),
		sum(owner_earnings_micros)
	FROM fresh
	GROUP BY hour, owner_id, ad_key, advertiser_id
	ORDER BY hour, owner_id, ad_key COLLATE "C", advertiser_id COLLATE "C"
	ON CONFLICT (hour, owner_id, ad_key, advertiser_id) DO UPDATE SET
		impressions = r.impressions + EXCLUDED.impressions,
		valid_impressions = r.valid_impressions + EXCLUDED.valid_impressions,
		billable_impressions = r.billable_impressions + EXCLUDED.billable_impressions,
		clicks = r.clicks + EXCLUDED.clicks,
		valid_clicks = r.valid_clicks + EXCLUDED.valid_clicks,
		billable_clicks = r.billable_clicks + EXCLUDED.billable_clicks,
		conversions = r.conversions + EXCLUDED.conversions,
		spend_micros = r.spend_micros + EXCLUDED.spend_micros,
		owner_earnings_micros = r.owner_earnings_micros + EXCLUDED.owner_earnings_micros
), invalid AS (
	INSERT INTO rollup_invalid_hourly AS r (hour, owner_id, ad_key, advertiser_id, rule, count)
	SELECT hour, owner_id, ad_key, advertiser_id, rule, count(*)
	FROM fresh
	WHERE invalid
	GROUP BY hour, owner_id, ad_key, advertiser_id, rule
	ORDER BY hour, owner_id, ad_key COLLATE "C", advertiser_id COLLATE "C", rule COLLATE "C"
	ON CONFLICT (hour, owner_id, ad_key, advertiser_id, rule) DO UPDATE SET count = r.count + EXCLUDED.count
), ads AS (
	INSERT INTO ad_totals AS a (ad_id, spend_day, spend_today, spend_total, impressions, clicks)
	SELECT ad_id, max(ad_day), (array_agg(day_spend ORDER BY ad_day DESC))[1], sum(day_spend),
		sum(impressions), sum(clicks)
	FROM (
		SELECT ad_id, ad_day, sum(spend_micros) AS day_spend, sum(impressions) AS impressions, sum(clicks) AS clicks
		FROM fresh
		WHERE counts_for_ad
		GROUP BY ad_id, ad_day
	) AS by_day
	GROUP BY ad_id
	ORDER BY ad_id COLLATE "C"
	ON CONFLICT (ad_id) DO UPDATE SET
		spend_day = GREATEST(a.spend_day, EXCLUDED.spend_day),
		spend_today = CASE
			WHEN EXCLUDED.spend_day > a.spend_day THEN EXCLUDED.spend_today
			WHEN EXCLUDED.spend_day = a.spend_day THEN a.spend_today + EXCLUDED.spend_today
			ELSE a.spend_today END,
		spend_total = a.spend_total + EXCLUDED.spend_total,
		impressions = a.impressions + EXCLUDED.impressions,
		clicks = a.clicks + EXCLUDED.clicks
)
SELECT k.position FROM unnest($2::uuid[], $3::text[], $4::text[]) WITH ORDINALITY AS k (tracking_id, type, name, position)
WHERE NOT EXISTS (SELECT FROM inserted i WHERE i.tracking_id = k.tracking_id AND i.type = k.type AND i.name = k.name)`

// upsertFillsSQL adds fill counts to the hourly rollups.
const upsertFillsSQL = `
INSERT INTO rollups_hourly AS r (hour, owner_id, ad_key, advertiser_id, requested, filled)
SELECT h, o, '', '', rq, f FROM unnest($1::timestamptz[], $2::uuid[], $3::bigint[], $4::bigint[]) AS u (h, o, rq, f)
ON CONFLICT (hour, owner_id, ad_key, advertiser_id) DO UPDATE SET
	requested = r.requested + EXCLUDED.requested,
	filled = r.filled + EXCLUDED.filled`

// WriteEvents implements analytics.Store in one statement
// (writeEventsSQL): the events not stored yet are inserted and only those
// are folded into the rollups, atomically. A batch that breaks a storage
// rule is refused whole with analytics.ErrInvalidReport.
//
// Deduplication relies on a tracking id's events all carrying its token's
// IssuedAt (the partition key is part of the primary key): the analytics
// service takes both from the token.
func (db *DB) WriteEvents(ctx context.Context, events []analytics.Event) ([]bool, error) {
	isNew := make([]bool, len(events))
	if len(events) == 0 {
		return isNew, nil
	}
	if err := rollup.CheckEvents(events); err != nil {
		return nil, err
	}
	unique := rollup.Unique(events)
	slices.SortFunc(unique, func(a, b int) int { return compareEventPK(events[a], events[b]) })
	rows, err := db.pool.Query(ctx, writeEventsSQL, eventArgs(events, unique)...)
	if err != nil {
		return nil, translate(err, nil)
	}
	for _, i := range unique {
		isNew[i] = true
	}
	var position int
	_, err = pgx.ForEachRow(rows, []any{&position}, func() error {
		if position < 1 || position > len(unique) {
			return fmt.Errorf("postgres: write events: no event at position %d", position)
		}
		isNew[unique[position-1]] = false
		return nil
	})
	if err != nil {
		return nil, translate(err, nil)
	}
	return isNew, nil
}

// pgUUID wraps id for pgx, which encodes a uuid.UUID through its
// driver.Valuer (as text, then parsed back): in arrays of a thousand that
// was a third of WriteEvents' CPU time.
func pgUUID(id uuid.UUID) pgtype.UUID { return pgtype.UUID{Bytes: id, Valid: true} }

func pgUUIDs(ids []uuid.UUID) []pgtype.UUID {
	out := make([]pgtype.UUID, len(ids))
	for i, id := range ids {
		out[i] = pgUUID(id)
	}
	return out
}

// compareEventPK orders events by the events table's primary key.
func compareEventPK(a, b analytics.Event) int {
	if c := rollup.Micro(a.Ad.IssuedAt).Compare(rollup.Micro(b.Ad.IssuedAt)); c != 0 {
		return c
	}
	if c := bytes.Compare(a.TrackingID[:], b.TrackingID[:]); c != 0 {
		return c
	}
	if c := strings.Compare(string(a.Type), string(b.Type)); c != 0 {
		return c
	}
	return strings.Compare(a.Name, b.Name)
}

// eventArgs returns writeEventsSQL's arguments for events[order[0]],
// events[order[1]], …: one array per column of the events table.
func eventArgs(events []analytics.Event, order []int) []any {
	n := len(order)
	var (
		issued, occurred, received          = make([]time.Time, n), make([]time.Time, n), make([]time.Time, n)
		trackingIDs, owners, viewers        = make([]pgtype.UUID, n), make([]pgtype.UUID, n), make([]pgtype.UUID, n)
		types, names, viewerKeys            = make([]string, n), make([]string, n), make([]string, n)
		placements, sources, adIDs          = make([]string, n), make([]string, n), make([]string, n)
		creatives, campaigns, advertisers   = make([]string, n), make([]string, n), make([]string, n)
		priceModels, rules, prefixes, agent = make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		prices, spends, earnings, values    = make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
		shares                              = make([]int32, n)
		billable, valid                     = make([]bool, n), make([]bool, n)
	)
	for k, i := range order {
		e := &events[i]
		ad := &e.Ad
		issued[k], occurred[k], received[k] = utc(ad.IssuedAt), utc(e.OccurredAt), utc(e.ReceivedAt)
		trackingIDs[k], owners[k] = pgUUID(e.TrackingID), pgUUID(ad.Owner)
		viewers[k] = pgtype.UUID{Bytes: ad.Viewer, Valid: ad.Viewer != uuid.Nil}
		types[k], names[k], viewerKeys[k] = string(e.Type), e.Name, ad.ViewerKey
		placements[k], sources[k], adIDs[k] = ad.Placement, ad.Source, ad.AdID
		creatives[k], campaigns[k], advertisers[k] = ad.CreativeID, ad.CampaignID, ad.AdvertiserID
		priceModels[k], rules[k], prefixes[k], agent[k] = ad.PriceModel, e.Rule, e.ClientPrefix, e.UserAgent
		prices[k], spends[k], earnings[k], values[k] = ad.PriceMicros, e.SpendMicros, e.OwnerEarningsMicros, e.ValueMicros
		shares[k] = int32(e.OwnerShareBP)
		billable[k], valid[k] = ad.Billable, e.Valid
	}
	return []any{issued, trackingIDs, types, names, owners, viewers, viewerKeys,
		placements, sources, adIDs, creatives, campaigns, advertisers, priceModels, prices, occurred, received,
		billable, valid, rules, spends, earnings, shares, values, prefixes, agent}
}

// ImpressionTimes implements analytics.Store with one primary-key probe
// per served ad, in the partition of its issue day only. The probe is a
// scalar subquery on purpose: as a join, the planner may prefer reading
// every partition's impressions (it does while the tables look empty).
func (db *DB) ImpressionTimes(ctx context.Context, ads []analytics.ServedAd) (map[uuid.UUID]time.Time, error) {
	out := make(map[uuid.UUID]time.Time, len(ads))
	if len(ads) == 0 {
		return out, nil
	}
	issued, ids := make([]time.Time, len(ads)), make([]pgtype.UUID, len(ads))
	for i, ad := range ads {
		issued[i], ids[i] = utc(ad.IssuedAt), pgUUID(ad.TrackingID)
	}
	rows, err := db.pool.Query(ctx, `
		SELECT k.tracking_id, (SELECT e.occurred_at FROM events e
			WHERE e.issued_at = k.issued_at AND e.tracking_id = k.tracking_id AND e.type = 'impression' AND e.name = '')
		FROM unnest($1::timestamptz[], $2::uuid[]) AS k (issued_at, tracking_id)`, issued, ids)
	if err != nil {
		return nil, translate(err, nil)
	}
	var (
		id uuid.UUID
		at pgtype.Timestamptz
	)
	_, err = pgx.ForEachRow(rows, []any{&id, &at}, func() error {
		if at.Valid {
			out[id] = at.Time.UTC()
		}
		return nil
	})
	if err != nil {
		return nil, translate(err, nil)
	}
	return out, nil
}

// Verdicts implements analytics.Store with one primary-key probe per
// event, in the partition of its issue day only (LIMIT keeps the lateral
// subquery a per-event probe rather than a join the planner may turn into
// a scan).
func (db *DB) Verdicts(ctx context.Context, events []analytics.Event) (map[analytics.EventKey]analytics.Verdict, error) {
	out := make(map[analytics.EventKey]analytics.Verdict, len(events))
	if len(events) == 0 {
		return out, nil
	}
	issued, ids := make([]time.Time, len(events)), make([]pgtype.UUID, len(events))
	types, names := make([]string, len(events)), make([]string, len(events))
	for i, e := range events {
		issued[i], ids[i], types[i], names[i] = utc(e.Ad.IssuedAt), pgUUID(e.TrackingID), string(e.Type), e.Name
	}
	rows, err := db.pool.Query(ctx, `
		SELECT k.tracking_id, k.type, k.name, v.valid, v.rule, v.spend_micros
		FROM unnest($1::timestamptz[], $2::uuid[], $3::text[], $4::text[]) AS k (issued_at, tracking_id, type, name),
		LATERAL (SELECT e.valid, e.rule, e.spend_micros FROM events e
			WHERE e.issued_at = k.issued_at AND e.tracking_id = k.tracking_id AND e.type = k.type AND e.name = k.name
			LIMIT 1) AS v`, issued, ids, types, names)
	if err != nil {
		return nil, translate(err, nil)
	}
	var (
		id        uuid.UUID
		typ, name string
		v         analytics.Verdict
	)
	_, err = pgx.ForEachRow(rows, []any{&id, &typ, &name, &v.Valid, &v.Rule, &v.SpendMicros}, func() error {
		out[analytics.EventKey{TrackingID: id, Type: analytics.EventType(typ), Name: name}] = v
		return nil
	})
	if err != nil {
		return nil, translate(err, nil)
	}
	return out, nil
}

// RecordFills implements analytics.Store in one statement. Negative
// counts, or more filled than requested, are refused with
// analytics.ErrInvalidReport.
func (db *DB) RecordFills(ctx context.Context, fills []analytics.FillCount) error {
	rows, err := rollup.FillRows(fills)
	if err != nil || len(rows) == 0 {
		return err
	}
	n := len(rows)
	hours, owners, requested, filled := make([]time.Time, n), make([]pgtype.UUID, n), make([]int64, n), make([]int64, n)
	for i, r := range rows {
		hours[i], owners[i], requested[i], filled[i] = r.Hour, pgUUID(r.Owner), r.Requested, r.Filled
	}
	_, err = db.pool.Exec(ctx, upsertFillsSQL, hours, owners, requested, filled)
	return translate(err, nil)
}

// Report implements analytics.Store with one aggregate query over the
// hourly rollups (and, for the invalid-traffic breakdown, their
// per-rule twin), bucketed with date_trunc in the query's zone; see
// rollup.Bucket for the exact rule. Groups are ordered by owner (as
// bytes), ad and advertiser (as bytes, COLLATE "C"), whatever the database
// collation. An unknown zone name is refused with analytics.ErrInvalidQuery.
func (db *DB) Report(ctx context.Context, q analytics.Query) ([]analytics.Row, error) {
	q, g, err := rollup.CheckQuery(q)
	if err != nil {
		return nil, err
	}
	out := []analytics.Row{}
	if !q.From.Before(q.To) {
		return out, nil
	}
	args := []any{q.From, q.To}
	bucket := "hour"
	if q.Granularity != analytics.Hour {
		args = append(args, q.Location.String())
		bucket = fmt.Sprintf("date_trunc('%s', hour, $%d)", q.Granularity, len(args))
	}
	where := "hour >= $1 AND hour < $2"
	if q.Owner != uuid.Nil {
		args = append(args, q.Owner)
		where += fmt.Sprintf(" AND owner_id = $%d", len(args))
	}
	if q.Advertiser != "" {
		args = append(args, q.Advertiser)
		where += fmt.Sprintf(" AND advertiser_id = $%d", len(args))
	}
	var dims []string
	if g.Owner {
		dims = append(dims, "owner_id")
	}
	if g.Ad {
		dims = append(dims, "ad_key")
	}
	if g.Advertiser {
		dims = append(dims, "advertiser_id")
	}
	group := strings.Join(append([]string{"bucket"}, dims...), ", ")
	selectDims := ""
	for _, d := range dims {
		selectDims += ", " + d
	}
	order := "bucket"
	for _, d := range dims {
		if d == "owner_id" {
			order += ", owner_id"
		} else {
			order += ", " + d + ` COLLATE "C"`
		}
	}
	sql := `
		WITH r AS (
			SELECT ` + bucket + ` AS bucket` + selectDims + `,
				sum(requested)::bigint AS requested, sum(filled)::bigint AS filled,
				sum(impressions)::bigint AS impressions, sum(valid_impressions)::bigint AS valid_impressions,
				sum(billable_impressions)::bigint AS billable_impressions,
				sum(clicks)::bigint AS clicks, sum(valid_clicks)::bigint AS valid_clicks,
				sum(billable_clicks)::bigint AS billable_clicks, sum(conversions)::bigint AS conversions,
				sum(spend_micros)::bigint AS spend_micros, sum(owner_earnings_micros)::bigint AS owner_earnings_micros
			FROM rollups_hourly
			WHERE ` + where + `
			GROUP BY ` + group + `
		), i AS (
			SELECT ` + group + `, jsonb_object_agg(rule, n) AS invalid
			FROM (
				SELECT ` + bucket + ` AS bucket` + selectDims + `, rule, sum(count)::bigint AS n
				FROM rollup_invalid_hourly
				WHERE ` + where + `
				GROUP BY ` + group + `, rule
			) per_rule
			GROUP BY ` + group + `
		)
		SELECT r.*, i.invalid
		FROM r LEFT JOIN i USING (` + group + `)
		ORDER BY ` + order
	rows, err := db.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, translateQuery(err)
	}
	defer rows.Close()
	for rows.Next() {
		var r analytics.Row
		dest := []any{&r.Bucket}
		for _, d := range dims {
			switch d {
			case "owner_id":
				dest = append(dest, &r.Owner)
			case "ad_key":
				dest = append(dest, &r.AdKey)
			default:
				dest = append(dest, &r.AdvertiserID)
			}
		}
		t := &r.Totals
		dest = append(dest, &t.Requested, &t.Filled, &t.Impressions, &t.ValidImpressions, &t.BillableImpressions,
			&t.Clicks, &t.ValidClicks, &t.BillableClicks, &t.Conversions, &t.SpendMicros, &t.OwnerEarningsMicros,
			&t.InvalidByRule)
		if err := rows.Scan(dest...); err != nil {
			return nil, translateQuery(err)
		}
		r.Bucket = r.Bucket.UTC()
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, translateQuery(err)
	}
	return out, nil
}

// codeInvalidParameterValue is PostgreSQL's answer to an unknown time zone.
const codeInvalidParameterValue = "22023"

// translateQuery is translate for report queries: PostgreSQL refusing the
// zone name means the query is invalid.
func translateQuery(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == codeInvalidParameterValue {
		return analytics.ErrInvalidQuery.WithFields(map[string]string{"location": "is not a time zone PostgreSQL knows"}).WithCause(err)
	}
	return translate(err, nil)
}

// AdStats implements analytics.Store and decision.StatsSource from the
// ad_totals table (never the rollups). The spend of a day other than the
// latest day with spend reads as zero.
func (db *DB) AdStats(ctx context.Context, ids []string, day time.Time) (map[string]decision.AdStats, error) {
	out := make(map[string]decision.AdStats, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := db.pool.Query(ctx, `
		SELECT ad_id, spend_day, spend_today, spend_total, impressions, clicks
		FROM ad_totals WHERE ad_id = ANY($1)`, ids)
	if err != nil {
		return nil, translate(err, nil)
	}
	today := rollup.Day(day)
	var (
		id       string
		spendDay time.Time
		st       decision.AdStats
		daySpend int64
	)
	_, err = pgx.ForEachRow(rows, []any{&id, &spendDay, &daySpend, &st.SpentTotalMicros, &st.Impressions, &st.Clicks}, func() error {
		s := st
		if spendDay.Equal(today) {
			s.SpentTodayMicros = daySpend
		}
		out[id] = s
		return nil
	})
	if err != nil {
		return nil, translate(err, nil)
	}
	return out, nil
}
