package memory

import (
	"context"
	"encoding/json"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/adshare/adshare/billing"
	"github.com/adshare/adshare/privacy"
)

var _ privacy.Store = (*Store)(nil)

// privacyState is the privacy part of the store, under Store.mu.
type privacyState struct {
	exports  map[uuid.UUID]privacy.Export
	bundles  map[uuid.UUID][]byte
	erasures map[uuid.UUID]privacy.Erasure
}

func newPrivacyState() privacyState {
	return privacyState{exports: map[uuid.UUID]privacy.Export{}, bundles: map[uuid.UUID][]byte{}, erasures: map[uuid.UUID]privacy.Erasure{}}
}

// CreateExport implements privacy.Store.
func (s *Store) CreateExport(ctx context.Context, e privacy.Export) (privacy.Export, bool, error) {
	if err := ctx.Err(); err != nil {
		return privacy.Export{}, false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, x := range s.privacy.exports {
		if x.User == e.User && x.Status == privacy.ExportPending {
			return x, false, nil
		}
	}
	s.privacy.exports[e.ID] = e
	return e, true, nil
}

// Export implements privacy.Store.
func (s *Store) Export(ctx context.Context, id uuid.UUID) (privacy.Export, error) {
	if err := ctx.Err(); err != nil {
		return privacy.Export{}, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	e, ok := s.privacy.exports[id]
	if !ok {
		return privacy.Export{}, privacy.ErrExportNotFound
	}
	return e, nil
}

// LatestExport implements privacy.Store.
func (s *Store) LatestExport(ctx context.Context, user uuid.UUID) (privacy.Export, error) {
	if err := ctx.Err(); err != nil {
		return privacy.Export{}, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	var latest privacy.Export
	for _, x := range s.privacy.exports {
		if x.User == user && (latest.ID == uuid.Nil || x.ID.String() > latest.ID.String()) {
			latest = x
		}
	}
	if latest.ID == uuid.Nil {
		return privacy.Export{}, privacy.ErrExportNotFound
	}
	return latest, nil
}

// CompleteExport implements privacy.Store.
func (s *Store) CompleteExport(ctx context.Context, id uuid.UUID, bundle []byte, now, expires time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.privacy.exports[id]
	switch {
	case !ok:
		return privacy.ErrExportNotFound
	case e.Status != privacy.ExportPending:
		return nil
	}
	e.Status, e.ReadyAt, e.ExpiresAt, e.Size = privacy.ExportReady, now.UTC(), expires.UTC(), int64(len(bundle))
	s.privacy.exports[id] = e
	s.privacy.bundles[id] = slices.Clone(bundle)
	return nil
}

// FailExport implements privacy.Store.
func (s *Store) FailExport(ctx context.Context, id uuid.UUID, now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.privacy.exports[id]; ok && e.Status == privacy.ExportPending {
		e.Status = privacy.ExportFailed
		s.privacy.exports[id] = e
	}
	return nil
}

// TakeExportBundle implements privacy.Store.
func (s *Store) TakeExportBundle(ctx context.Context, id uuid.UUID, now time.Time) (privacy.Export, []byte, error) {
	if err := ctx.Err(); err != nil {
		return privacy.Export{}, nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.privacy.exports[id]
	switch {
	case !ok:
		return privacy.Export{}, nil, privacy.ErrExportNotFound
	case e.Status == privacy.ExportDownloaded:
		return privacy.Export{}, nil, privacy.ErrExportGone
	case e.Status != privacy.ExportReady:
		return privacy.Export{}, nil, privacy.ErrExportNotReady
	case !now.Before(e.ExpiresAt):
		delete(s.privacy.bundles, id)
		return privacy.Export{}, nil, privacy.ErrExportGone
	}
	b := s.privacy.bundles[id]
	delete(s.privacy.bundles, id)
	e.Status, e.DownloadedAt = privacy.ExportDownloaded, now.UTC()
	s.privacy.exports[id] = e
	return e, b, nil
}

// CreateErasure implements privacy.Store.
func (s *Store) CreateErasure(ctx context.Context, e privacy.Erasure) (privacy.Erasure, bool, error) {
	if err := ctx.Err(); err != nil {
		return privacy.Erasure{}, false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, x := range s.privacy.erasures {
		if x.User == e.User && x.Status == privacy.ErasurePending {
			return x, false, nil
		}
	}
	e.Steps = slices.Clone(e.Steps)
	s.privacy.erasures[e.ID] = e
	return e, true, nil
}

// Erasure implements privacy.Store.
func (s *Store) Erasure(ctx context.Context, id uuid.UUID) (privacy.Erasure, error) {
	if err := ctx.Err(); err != nil {
		return privacy.Erasure{}, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	e, ok := s.privacy.erasures[id]
	if !ok {
		return privacy.Erasure{}, privacy.ErrErasureNotFound
	}
	e.Steps = slices.Clone(e.Steps)
	return e, nil
}

// ErasureStepDone implements privacy.Store.
func (s *Store) ErasureStepDone(ctx context.Context, id uuid.UUID, step string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.privacy.erasures[id]
	if !ok {
		return privacy.ErrErasureNotFound
	}
	if !e.Done(step) {
		e.Steps = append(slices.Clone(e.Steps), step)
		s.privacy.erasures[id] = e
	}
	return nil
}

// FinishErasure implements privacy.Store.
func (s *Store) FinishErasure(ctx context.Context, id uuid.UUID, now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.privacy.erasures[id]
	if !ok {
		return privacy.ErrErasureNotFound
	}
	e.Status, e.User, e.FinishedAt = privacy.ErasureDone, uuid.Nil, now.UTC()
	s.privacy.erasures[id] = e
	return nil
}

// UserRecords implements privacy.Store. The memory store keeps no raw
// events (only rollups), so it lists the user's ledger entries, by
// transaction.
func (s *Store) UserRecords(ctx context.Context, user uuid.UUID, limit int) (map[string][]json.RawMessage, error) {
	txs, err := s.Transactions(ctx, billing.TxFilter{User: user, Limit: min(limit, 500)})
	if err != nil {
		return nil, err
	}
	out := map[string][]json.RawMessage{"events": {}, "ledger_transactions": {}}
	for _, t := range txs {
		raw, err := json.Marshal(t)
		if err != nil {
			return nil, err
		}
		out["ledger_transactions"] = append(out["ledger_transactions"], raw)
	}
	return out, nil
}

// EraseUser implements privacy.Store.
func (s *Store) EraseUser(ctx context.Context, user, pseudonym uuid.UUID) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ledger.mu.Lock()
	defer s.ledger.mu.Unlock()
	s.events.mu.Lock()
	defer s.events.mu.Unlock()

	// Deleted: the account and everything only about it.
	if u, ok := s.users[user]; ok {
		delete(s.byEmail, u.Email)
	}
	delete(s.users, user)
	delete(s.passwords, user)
	delete(s.tiers, user)
	delete(s.spaces, user)
	delete(s.consents, user)
	for id, c := range s.contents {
		if c.AdvertiserID == user {
			delete(s.contents, id)
		}
	}
	for id, sess := range s.sessions {
		if sess.UserID != user {
			continue
		}
		delete(s.sessions, id)
		for h, row := range s.refresh {
			if row.session == id {
				delete(s.refresh, h)
				delete(s.generation, sessionGeneration{id, row.generation})
			}
		}
	}
	for k, id := range s.identities {
		if id.UserID == user {
			delete(s.identities, k)
		}
	}
	if p, ok := s.billing.payees[user]; ok {
		delete(s.billing.payeeByAcct, p.ID)
		delete(s.billing.payees, user)
	}
	for id, po := range s.billing.payouts {
		if po.Owner == user {
			po.Destination = ""
			s.billing.payouts[id] = po
		}
	}
	for id, e := range s.privacy.exports {
		if e.User == user || e.RequestedBy == user {
			delete(s.privacy.exports, id)
			delete(s.privacy.bundles, id)
		}
	}
	// The audit log keeps what happened, not from where or with what.
	text := user.String()
	for i, e := range s.audit {
		if e.ActorID == user || e.TargetID == text {
			e.IP, e.UserAgent, e.Details = "", "", map[string]string{}
			s.audit[i] = e
		}
	}
	// Kept under the pseudonym: everything else that names the user.
	renameAll(user, pseudonym, false, &s.users, &s.spaces, &s.contents, &s.sessions, &s.identities, &s.tiers,
		&s.audit, &s.events.rows, &s.events.invalid, &s.events.ads, &s.ledger, &s.billing)
	return nil
}
