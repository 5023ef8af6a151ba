package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
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

// unnestOf returns "unnest($first::types[0][], $first+1::types[1][], …)":
// a batch passed as one array per column.
func unnestOf(first int, types ...string) string {
	args := make([]string, len(types))
	for i, t := range types {
		args[i] = fmt.Sprintf("$%d::%s[]", first+i, t)
	}
	return "unnest(" + strings.Join(args, ", ") + ")"
}

// eventTypes are the column types of the events table, in the order of
// insertEventsSQL's columns and eventArgs' arrays.
var eventTypes = []string{"timestamptz", "uuid", "text", "text", "uuid", "uuid", "text", "text", "text",
	"text", "text", "text", "text", "text", "bigint", "timestamptz", "timestamptz", "boolean", "boolean", "text",
	"bigint", "bigint", "integer", "bigint", "text", "text"}

// insertEventsFrom inserts events given as arrays; a key already stored is
// skipped (ON CONFLICT DO NOTHING), and a concurrent insert of the same key
// waits for the other transaction and is then skipped, so each event is new
// exactly once.
func insertEventsFrom(arrays string) string {
	return `INSERT INTO events (issued_at, tracking_id, type, name, owner_id, viewer_id, viewer_key, placement, source,
	ad_id, creative_id, campaign_id, advertiser_id, price_model, price_micros, occurred_at, received_at,
	billable, valid, rule, spend_micros, owner_earnings_micros, owner_share_bp, value_micros, client_prefix, user_agent)
SELECT * FROM ` + arrays + `
ON CONFLICT DO NOTHING`
}

// rollupTypes, invalidTypes and adTotalTypes are the columns of
// rollupArgs' three sets of arrays.
var (
	rollupTypes = []string{"timestamptz", "uuid", "text", "text", "bigint", "bigint", "bigint", "bigint", "bigint",
		"bigint", "bigint", "bigint", "bigint"}
	invalidTypes = []string{"timestamptz", "uuid", "text", "text", "text", "bigint"}
	adTotalTypes = []string{"text", "date", "bigint", "bigint", "bigint", "bigint"}
)

// upsertRollupsFrom adds event counters to the hourly rollups.
func upsertRollupsFrom(arrays string) string {
	return `INSERT INTO rollups_hourly AS r (hour, owner_id, ad_key, advertiser_id, impressions, valid_impressions,
	billable_impressions, clicks, valid_clicks, billable_clicks, conversions, spend_micros, owner_earnings_micros)
SELECT * FROM ` + arrays + `
ON CONFLICT (hour, owner_id, ad_key, advertiser_id) DO UPDATE SET
	impressions = r.impressions + EXCLUDED.impressions,
	valid_impressions = r.valid_impressions + EXCLUDED.valid_impressions,
	billable_impressions = r.billable_impressions + EXCLUDED.billable_impressions,
	clicks = r.clicks + EXCLUDED.clicks,
	valid_clicks = r.valid_clicks + EXCLUDED.valid_clicks,
	billable_clicks = r.billable_clicks + EXCLUDED.billable_clicks,
	conversions = r.conversions + EXCLUDED.conversions,
	spend_micros = r.spend_micros + EXCLUDED.spend_micros,
	owner_earnings_micros = r.owner_earnings_micros + EXCLUDED.owner_earnings_micros`
}

// upsertInvalidFrom adds invalid-traffic counts per rule.
func upsertInvalidFrom(arrays string) string {
	return `INSERT INTO rollup_invalid_hourly AS r (hour, owner_id, ad_key, advertiser_id, rule, count)
SELECT * FROM ` + arrays + `
ON CONFLICT (hour, owner_id, ad_key, advertiser_id, rule) DO UPDATE SET count = r.count + EXCLUDED.count`
}

// upsertAdTotalsFrom adds local ads' delivery, with rollup.AdRow.Merge's
// rule for the day's spend.
func upsertAdTotalsFrom(arrays string) string {
	return `INSERT INTO ad_totals AS a (ad_id, spend_day, spend_today, spend_total, impressions, clicks)
SELECT * FROM ` + arrays + `
ON CONFLICT (ad_id) DO UPDATE SET
	spend_day = GREATEST(a.spend_day, EXCLUDED.spend_day),
	spend_today = CASE
		WHEN EXCLUDED.spend_day > a.spend_day THEN EXCLUDED.spend_today
		WHEN EXCLUDED.spend_day = a.spend_day THEN a.spend_today + EXCLUDED.spend_today
		ELSE a.spend_today END,
	spend_total = a.spend_total + EXCLUDED.spend_total,
	impressions = a.impressions + EXCLUDED.impressions,
	clicks = a.clicks + EXCLUDED.clicks`
}

// The statements of WriteEvents.
var (
	// writeAllNewSQL is the one-statement path: it inserts the batch and
	// adds the rollups of the whole batch (folded by the caller as though
	// every event were new), in one round trip and atomically without an
	// explicit transaction. Its last parameter is the batch's size: when
	// fewer rows were inserted (some were stored before), the guard
	// events_expect_all_new aborts the statement with codeNotAllNew and
	// leaves nothing behind.
	writeAllNewSQL = func() string {
		rollupsAt := 1 + len(eventTypes)
		invalidAt := rollupsAt + len(rollupTypes)
		adsAt := invalidAt + len(invalidTypes)
		return `WITH inserted AS (
` + insertEventsFrom(unnestOf(1, eventTypes...)) + `
RETURNING 1
), rollups AS (
` + upsertRollupsFrom(unnestOf(rollupsAt, rollupTypes...)) + `
), invalid AS (
` + upsertInvalidFrom(unnestOf(invalidAt, invalidTypes...)) + `
), ads AS (
` + upsertAdTotalsFrom(unnestOf(adsAt, adTotalTypes...)) + `
)
SELECT events_expect_all_new((SELECT count(*) FROM inserted), $` + strconv.Itoa(adsAt+len(adTotalTypes)) + `)`
	}()

	// The transactional path's statements: the insert returns the keys it
	// inserted, and only those events are folded into the rollups.
	insertEventsSQL   = insertEventsFrom(unnestOf(1, eventTypes...)) + "\nRETURNING tracking_id, type, name"
	upsertRollupsSQL  = upsertRollupsFrom(unnestOf(1, rollupTypes...))
	upsertInvalidSQL  = upsertInvalidFrom(unnestOf(1, invalidTypes...))
	upsertAdTotalsSQL = upsertAdTotalsFrom(unnestOf(1, adTotalTypes...))
)

// codeNotAllNew is the SQLSTATE events_expect_all_new raises.
const codeNotAllNew = "AS001"

// upsertFillsSQL adds fill counts to the hourly rollups.
const upsertFillsSQL = `
INSERT INTO rollups_hourly AS r (hour, owner_id, ad_key, advertiser_id, requested, filled)
SELECT h, o, '', '', rq, f FROM unnest($1::timestamptz[], $2::uuid[], $3::bigint[], $4::bigint[]) AS u (h, o, rq, f)
ON CONFLICT (hour, owner_id, ad_key, advertiser_id) DO UPDATE SET
	requested = r.requested + EXCLUDED.requested,
	filled = r.filled + EXCLUDED.filled`

// WriteEvents implements analytics.Store. The events not stored yet are
// inserted and only those are folded into the rollups, atomically. Rows
// are written in key order (events by primary key, rollups by rollup.Key),
// so concurrent batches take their row locks in the same order and cannot
// deadlock. A batch that breaks a storage rule is refused whole with
// analytics.ErrInvalidReport.
//
// A batch is first written in one statement that assumes every event is
// new (writeAllNewSQL), the common case: one round trip instead of the
// four of a transaction (BEGIN, insert, upserts, COMMIT). When some event
// was stored before, that statement aborts and the batch is written again
// in a transaction that inserts, sees which rows were new and folds those.
// The failed attempt doubles a batch's cost, so while most recent batches
// held a retry (apps resending a backlog after an outage), batches go
// straight to the transaction.
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
	batch := make([]analytics.Event, len(unique)) // in primary key order
	for k, i := range unique {
		batch[k] = events[i]
	}

	if db.retries.likely() {
		if err := db.writeEventsTx(ctx, unique, batch, isNew); err != nil {
			return nil, err
		}
		return isNew, nil
	}
	args := append(eventArgs(batch), rollupArgs(rollup.Fold(batch))...)
	_, err := db.pool.Exec(ctx, writeAllNewSQL, append(args, len(batch))...)
	var pgErr *pgconn.PgError
	switch {
	case err == nil:
		db.retries.observe(false)
		for _, i := range unique {
			isNew[i] = true
		}
		return isNew, nil
	case !errors.As(err, &pgErr) || pgErr.Code != codeNotAllNew:
		return nil, translate(err, nil)
	}
	if err := db.writeEventsTx(ctx, unique, batch, isNew); err != nil {
		return nil, err
	}
	return isNew, nil
}

// writeEventsTx is WriteEvents' transactional path: it writes batch (the
// events at the indexes unique, in primary key order) and marks isNew.
func (db *DB) writeEventsTx(ctx context.Context, unique []int, batch []analytics.Event, isNew []bool) error {
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		inserted, err := insertEvents(ctx, tx, batch)
		if err != nil {
			return err
		}
		fresh := make([]analytics.Event, 0, len(inserted))
		for k, e := range batch {
			if _, ok := inserted[e.Key()]; ok {
				isNew[unique[k]] = true
				fresh = append(fresh, e)
			}
		}
		db.retries.observe(len(fresh) < len(batch))
		return foldRollups(ctx, tx, rollup.Fold(fresh))
	})
	return translate(err, nil)
}

// retryEstimate is a moving average of how many event batches held an
// event stored before: each batch moves it 1/16 of the way to 0 or 1. It
// is safe for concurrent use.
type retryEstimate struct {
	share atomic.Uint32 // in 1/65536ths
}

func (r *retryEstimate) observe(retried bool) {
	for {
		old := r.share.Load()
		target := uint32(0)
		if retried {
			target = 1 << 16
		}
		next := int64(old) + (int64(target)-int64(old))/16
		if r.share.CompareAndSwap(old, uint32(next)) {
			return
		}
	}
}

// likely reports whether most recent batches held a retried event.
func (r *retryEstimate) likely() bool { return r.share.Load() > 1<<15 }

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
	if c := rollup.Micro(a.IssuedAt).Compare(rollup.Micro(b.IssuedAt)); c != 0 {
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

// eventArgs returns the events as one array per column of the events
// table (eventTypes).
func eventArgs(batch []analytics.Event) []any {
	n := len(batch)
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
	for k := range batch {
		e := &batch[k]
		issued[k], occurred[k], received[k] = utc(e.IssuedAt), utc(e.OccurredAt), utc(e.ReceivedAt)
		trackingIDs[k], owners[k] = pgUUID(e.TrackingID), pgUUID(e.Owner)
		viewers[k] = pgtype.UUID{Bytes: e.Viewer, Valid: e.Viewer != uuid.Nil}
		types[k], names[k], viewerKeys[k] = string(e.Type), e.Name, e.ViewerKey
		placements[k], sources[k], adIDs[k] = e.Placement, e.Source, e.AdID
		creatives[k], campaigns[k], advertisers[k] = e.CreativeID, e.CampaignID, e.AdvertiserID
		priceModels[k], rules[k], prefixes[k], agent[k] = e.PriceModel, e.Rule, e.ClientPrefix, e.UserAgent
		prices[k], spends[k], earnings[k], values[k] = e.PriceMicros, e.SpendMicros, e.OwnerEarningsMicros, e.ValueMicros
		shares[k] = int32(e.OwnerShareBP)
		billable[k], valid[k] = e.Billable, e.Valid
	}
	return []any{issued, trackingIDs, types, names, owners, viewers, viewerKeys,
		placements, sources, adIDs, creatives, campaigns, advertisers, priceModels, prices, occurred, received,
		billable, valid, rules, spends, earnings, shares, values, prefixes, agent}
}

// insertEvents inserts the batch and returns the keys of the events that
// were new.
func insertEvents(ctx context.Context, tx pgx.Tx, batch []analytics.Event) (map[analytics.EventKey]struct{}, error) {
	rows, err := tx.Query(ctx, insertEventsSQL, eventArgs(batch)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	inserted := make(map[analytics.EventKey]struct{}, len(batch))
	for rows.Next() {
		var (
			id   pgtype.UUID
			typ  string
			name string
		)
		if err := rows.Scan(&id, &typ, &name); err != nil {
			return nil, err
		}
		inserted[analytics.EventKey{TrackingID: id.Bytes, Type: analytics.EventType(typ), Name: name}] = struct{}{}
	}
	return inserted, rows.Err()
}

// rollupArgs returns a delta as the arrays of rollupTypes, invalidTypes
// and adTotalTypes, one set after the other, each in key order.
func rollupArgs(d rollup.Delta) []any {
	n := len(d.Rows)
	hours, owners, adKeys, advertisers := make([]time.Time, n), make([]pgtype.UUID, n), make([]string, n), make([]string, n)
	cols := make([][]int64, 9)
	for c := range cols {
		cols[c] = make([]int64, n)
	}
	for i, r := range d.Rows {
		hours[i], owners[i], adKeys[i], advertisers[i] = r.Hour, pgUUID(r.Owner), r.AdKey, r.Advertiser
		for c, v := range [...]int64{r.Impressions, r.ValidImpressions, r.BillableImpressions, r.Clicks,
			r.ValidClicks, r.BillableClicks, r.Conversions, r.SpendMicros, r.OwnerEarningsMicros} {
			cols[c][i] = v
		}
	}
	args := []any{hours, owners, adKeys, advertisers, cols[0], cols[1], cols[2], cols[3], cols[4], cols[5], cols[6], cols[7], cols[8]}

	n = len(d.Invalid)
	iHours, iOwners, iAdKeys, iAdvertisers := make([]time.Time, n), make([]pgtype.UUID, n), make([]string, n), make([]string, n)
	rules, counts := make([]string, n), make([]int64, n)
	for i, r := range d.Invalid {
		iHours[i], iOwners[i], iAdKeys[i], iAdvertisers[i] = r.Hour, pgUUID(r.Owner), r.AdKey, r.Advertiser
		rules[i], counts[i] = r.Rule, r.Count
	}
	args = append(args, iHours, iOwners, iAdKeys, iAdvertisers, rules, counts)

	n = len(d.Ads)
	ids, days := make([]string, n), make([]time.Time, n)
	daySpend, total, impressions, clicks := make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
	for i, a := range d.Ads {
		ids[i], days[i] = a.AdID, a.Day
		daySpend[i], total[i], impressions[i], clicks[i] = a.DaySpend, a.TotalSpend, a.Impressions, a.Clicks
	}
	return append(args, ids, days, daySpend, total, impressions, clicks)
}

// foldRollups upserts a delta in one round trip.
func foldRollups(ctx context.Context, tx pgx.Tx, d rollup.Delta) error {
	args := rollupArgs(d)
	rows, invalid, ads := args[:len(rollupTypes)], args[len(rollupTypes):len(rollupTypes)+len(invalidTypes)], args[len(rollupTypes)+len(invalidTypes):]
	b := &pgx.Batch{}
	if len(d.Rows) > 0 {
		b.Queue(upsertRollupsSQL, rows...)
	}
	if len(d.Invalid) > 0 {
		b.Queue(upsertInvalidSQL, invalid...)
	}
	if len(d.Ads) > 0 {
		b.Queue(upsertAdTotalsSQL, ads...)
	}
	if b.Len() == 0 {
		return nil
	}
	return tx.SendBatch(ctx, b).Close()
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
