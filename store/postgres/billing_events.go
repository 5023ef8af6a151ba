package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/adshare/adshare/auth/keyring"
	"github.com/adshare/adshare/billing"
	"github.com/adshare/adshare/store/internal/posting"
)

// SaveEvent implements billing.Store: the connected account, the payload
// and the event as read are sealed (Config.Keyring is required), and a
// concurrent save of the same id waits for the other and is not new.
func (db *DB) SaveEvent(ctx context.Context, e billing.StoredEvent) (bool, error) {
	r, err := db.ring()
	if err != nil {
		return false, err
	}
	account, err := db.sealOptional(purposeEventAccount, e.ID, e.Account)
	if err != nil {
		return false, err
	}
	payload, err := r.Seal(purposeEventPayload, e.ID, e.Payload)
	if err != nil {
		return false, err
	}
	read, err := json.Marshal(e.Event)
	if err != nil {
		return false, fmt.Errorf("postgres: save event %s: %w", e.ID, err)
	}
	event, err := r.Seal(purposeEvent, e.ID, read)
	if err != nil {
		return false, err
	}
	tag, err := db.pool.Exec(ctx, `INSERT INTO billing_events (id, type, account_sealed, created, payload_sealed, event_sealed, received_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING`,
		e.ID, string(e.Type), account, nullTime(e.Created), payload, event, nullTime(e.ReceivedAt))
	if err != nil {
		return false, fmt.Errorf("postgres: save event %s: %w", e.ID, translate(err, nil))
	}
	return tag.RowsAffected() == 1, nil
}

const eventColumns = `id, type, account_sealed, created, payload_sealed, event_sealed, received_at, processed_at`

// scanEvent reads and opens one row of eventColumns.
func (db *DB) scanEvent(r *keyring.Ring, row pgx.Row) (billing.StoredEvent, error) {
	var e billing.StoredEvent
	var account, payload, event []byte
	var created, received, processed pgtype.Timestamptz
	if err := row.Scan(&e.ID, &e.Type, &account, &created, &payload, &event, &received, &processed); err != nil {
		return billing.StoredEvent{}, err
	}
	e.Created, e.ReceivedAt, e.ProcessedAt = timeOf(created), timeOf(received), timeOf(processed)
	var err error
	if e.Account, err = db.openOptional(purposeEventAccount, e.ID, account); err != nil {
		return billing.StoredEvent{}, fmt.Errorf("postgres: event %s: account: %w", e.ID, err)
	}
	if e.Payload, err = r.Open(purposeEventPayload, e.ID, payload); err != nil {
		return billing.StoredEvent{}, fmt.Errorf("postgres: event %s: payload: %w", e.ID, err)
	}
	read, err := r.Open(purposeEvent, e.ID, event)
	if err != nil {
		return billing.StoredEvent{}, fmt.Errorf("postgres: event %s: %w", e.ID, err)
	}
	if err := json.Unmarshal(read, &e.Event); err != nil {
		return billing.StoredEvent{}, fmt.Errorf("postgres: event %s: %w", e.ID, err)
	}
	return e, nil
}

// Event implements billing.Store; it needs Config.Keyring.
func (db *DB) Event(ctx context.Context, id string) (billing.StoredEvent, error) {
	r, err := db.ring()
	if err != nil {
		return billing.StoredEvent{}, err
	}
	e, err := db.scanEvent(r, db.pool.QueryRow(ctx, `SELECT `+eventColumns+` FROM billing_events WHERE id = $1`, id))
	if err != nil {
		return billing.StoredEvent{}, translate(err, billing.ErrEventNotFound)
	}
	return e, nil
}

// UnprocessedEvents implements billing.Store: oldest received first; a
// limit below 1 is 50, above 500 is 500. Without a keyring it answers
// when there is nothing to open (manual mode stores no events, and its
// sweep asks), and fails with ErrKeyringRequired when there is.
func (db *DB) UnprocessedEvents(ctx context.Context, limit int) ([]billing.StoredEvent, error) {
	r, ringErr := db.ring()
	rows, err := db.pool.Query(ctx, `SELECT `+eventColumns+` FROM billing_events WHERE processed_at IS NULL
		ORDER BY seq LIMIT $1`, posting.PageSize(limit))
	if err != nil {
		return nil, fmt.Errorf("postgres: unprocessed events: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (billing.StoredEvent, error) {
		if ringErr != nil {
			return billing.StoredEvent{}, ringErr
		}
		return db.scanEvent(r, row)
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: unprocessed events: %w", err)
	}
	return out, nil
}

// timeOf is a nullable timestamp in UTC; the zero time for NULL.
func timeOf(t pgtype.Timestamptz) (out time.Time) {
	if t.Valid {
		out = t.Time.UTC()
	}
	return out
}
