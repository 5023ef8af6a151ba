package postgres

import (
	"context"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/adshare/adshare/adspace"
)

// Paging bounds of the content listings (see adspace.ContentFilter).
const (
	defaultContentLimit = 50
	maxContentLimit     = 200
)

func contentLimit(n int) int {
	if n <= 0 {
		return defaultContentLimit
	}
	return min(n, maxContentLimit)
}

const contentColumns = `id, advertiser_id, status, reject_reason, format, title, body,
	image_url, image_mime_type, image_width, image_height, image_bytes,
	click_url, call_to_action, categories, keywords, bid_model, bid_micros,
	daily_budget_micros, total_budget_micros, schedule_start, schedule_end,
	fingerprint, version, created_at, updated_at, submitted_at, reviewed_at, reviewed_by`

// contentArgs returns c's column values in contentColumns order.
func contentArgs(c adspace.Content) []any {
	var reviewedBy *uuid.UUID
	if c.ReviewedBy != uuid.Nil {
		reviewedBy = &c.ReviewedBy
	}
	return []any{
		c.ID, c.AdvertiserID, string(c.Status), c.RejectReason, c.Format, c.Title, c.Body,
		c.ImageURL, c.Image.MimeType, c.Image.Width, c.Image.Height, c.Image.Bytes,
		c.ClickURL, c.CallToAction, nonNil(c.Categories), nonNil(c.Keywords), string(c.Bid.Model), c.Bid.Micros,
		c.DailyBudgetMicros, c.TotalBudgetMicros, nullUTC(c.Schedule.Start), nullUTC(c.Schedule.End),
		c.Fingerprint, c.Version, utc(c.CreatedAt), utc(c.UpdatedAt), nullUTC(c.SubmittedAt), nullUTC(c.ReviewedAt), reviewedBy,
	}
}

// nullUTC is nullTime at the database's precision.
func nullUTC(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = utc(t)
	return &t
}

// CreateContent implements adspace.ContentStore. The partial unique index
// ad_contents_live_fingerprint_key makes the duplicate check atomic: of two
// concurrent creates with one fingerprint, exactly one succeeds.
func (db *DB) CreateContent(ctx context.Context, c adspace.Content) error {
	_, err := db.pool.Exec(ctx, `INSERT INTO ad_contents (`+contentColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15,
		        $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29)`,
		contentArgs(c)...)
	return translate(err, nil)
}

// Content implements adspace.ContentStore.
func (db *DB) Content(ctx context.Context, id uuid.UUID) (adspace.Content, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+contentColumns+` FROM ad_contents WHERE id = $1`, id)
	if err != nil {
		return adspace.Content{}, translate(err, nil)
	}
	c, err := pgx.CollectExactlyOneRow(rows, scanContent)
	return c, translate(err, adspace.ErrContentNotFound)
}

// AdvertiserContent implements adspace.ContentStore. Contents come oldest
// first, ordered by (created_at, id); After pages from the content with that
// id, which must be the advertiser's (else the page is empty).
func (db *DB) AdvertiserContent(ctx context.Context, advertiser uuid.UUID, f adspace.ContentFilter) ([]adspace.Content, error) {
	var after *uuid.UUID
	if f.After != uuid.Nil {
		after = &f.After
	}
	rows, err := db.pool.Query(ctx, `SELECT `+contentColumns+` FROM ad_contents
		WHERE advertiser_id = $1
		  AND ($2 = '' OR status = $2)
		  AND ($3::uuid IS NULL OR (created_at, id) > (
		      SELECT created_at, id FROM ad_contents WHERE id = $3 AND advertiser_id = $1))
		ORDER BY created_at, id
		LIMIT $4`,
		advertiser, string(f.Status), after, contentLimit(f.Limit))
	if err != nil {
		return nil, translate(err, nil)
	}
	return collectContents(rows)
}

// CountLiveContent implements adspace.ContentStore.
func (db *DB) CountLiveContent(ctx context.Context, advertiser uuid.UUID) (int, error) {
	var n int
	err := db.pool.QueryRow(ctx,
		`SELECT count(*) FROM ad_contents WHERE advertiser_id = $1 AND status <> 'archived'`, advertiser).Scan(&n)
	return n, translate(err, nil)
}

// UpdateContent implements adspace.ContentStore. The version check and the
// write are one statement: of two concurrent updates from one version, the
// second waits for the first's row lock, re-checks the version, matches
// nothing and reports ErrVersionConflict. AdvertiserID and CreatedAt never
// change.
func (db *DB) UpdateContent(ctx context.Context, c adspace.Content) error {
	args := contentArgs(c)
	// Every column but id, advertiser_id and created_at ($1, $2, $25).
	args = append(append([]any{c.ID}, args[2:24]...), args[25:]...)
	tag, err := db.pool.Exec(ctx, `UPDATE ad_contents SET
			status = $2, reject_reason = $3, format = $4, title = $5, body = $6,
			image_url = $7, image_mime_type = $8, image_width = $9, image_height = $10, image_bytes = $11,
			click_url = $12, call_to_action = $13, categories = $14, keywords = $15,
			bid_model = $16, bid_micros = $17, daily_budget_micros = $18, total_budget_micros = $19,
			schedule_start = $20, schedule_end = $21, fingerprint = $22, version = $23,
			updated_at = $24, submitted_at = $25, reviewed_at = $26, reviewed_by = $27
		WHERE id = $1 AND version = $23::bigint - 1`,
		args...)
	if err != nil {
		return translate(err, nil)
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	// No row matched: either there is no such content or its version moved on.
	var exists bool
	if err := db.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM ad_contents WHERE id = $1)`, c.ID).Scan(&exists); err != nil {
		return translate(err, nil)
	}
	if exists {
		return adspace.ErrVersionConflict
	}
	return adspace.ErrContentNotFound
}

// ReviewQueue implements adspace.ContentStore, ordered by (submitted_at,
// id) over the partial index ad_contents_review_idx.
func (db *DB) ReviewQueue(ctx context.Context, after adspace.QueuePlace, limit int) ([]adspace.Content, error) {
	id := after.ID
	if id == uuid.Nil {
		id = uuid.Max // just after everything submitted at that time
	}
	rows, err := db.pool.Query(ctx, `SELECT `+contentColumns+` FROM ad_contents
		WHERE status = 'pending_review' AND ($1::timestamptz IS NULL OR (submitted_at, id) > ($1, $2::uuid))
		ORDER BY submitted_at, id
		LIMIT $3`,
		nullUTC(after.SubmittedAt), id, contentLimit(limit))
	if err != nil {
		return nil, translate(err, nil)
	}
	return collectContents(rows)
}

// ServableContent implements adspace.ContentStore, ordered by (created_at,
// id).
func (db *DB) ServableContent(ctx context.Context, now time.Time) ([]adspace.Content, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+contentColumns+` FROM ad_contents
		WHERE status = 'approved'
		  AND (schedule_start IS NULL OR schedule_start <= $1)
		  AND (schedule_end IS NULL OR schedule_end > $1)
		ORDER BY created_at, id`,
		utc(now))
	if err != nil {
		return nil, translate(err, nil)
	}
	return collectContents(rows)
}

func collectContents(rows pgx.Rows) ([]adspace.Content, error) {
	out, err := pgx.CollectRows(rows, scanContent)
	if err != nil {
		return nil, translate(err, nil)
	}
	if out == nil {
		out = []adspace.Content{}
	}
	return out, nil
}

func scanContent(row pgx.CollectableRow) (adspace.Content, error) {
	var (
		c                               adspace.Content
		status, model                   string
		start, end, submitted, reviewed *time.Time
		reviewedBy                      *uuid.UUID
	)
	err := row.Scan(&c.ID, &c.AdvertiserID, &status, &c.RejectReason, &c.Format, &c.Title, &c.Body,
		&c.ImageURL, &c.Image.MimeType, &c.Image.Width, &c.Image.Height, &c.Image.Bytes,
		&c.ClickURL, &c.CallToAction, &c.Categories, &c.Keywords, &model, &c.Bid.Micros,
		&c.DailyBudgetMicros, &c.TotalBudgetMicros, &start, &end,
		&c.Fingerprint, &c.Version, &c.CreatedAt, &c.UpdatedAt, &submitted, &reviewed, &reviewedBy)
	if err != nil {
		return adspace.Content{}, err
	}
	c.Status, c.Bid.Model = adspace.Status(status), adspace.BidModel(model)
	c.Categories, c.Keywords = nonNil(c.Categories), nonNil(c.Keywords)
	c.Schedule.Start, c.Schedule.End = fromNull(start), fromNull(end)
	c.SubmittedAt, c.ReviewedAt = fromNull(submitted), fromNull(reviewed)
	if reviewedBy != nil {
		c.ReviewedBy = *reviewedBy
	}
	c.CreatedAt, c.UpdatedAt = c.CreatedAt.UTC(), c.UpdatedAt.UTC()
	return c, nil
}

// fromNull maps SQL NULL to the zero time.
func fromNull(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}
