package memory

import (
	"bytes"
	"context"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/adshare/adshare/billing"
	"github.com/adshare/adshare/store/internal/posting"
)

var _ billing.Store = (*Store)(nil)

// billingState is billing's records, under the store's lock (and, for a
// Write that posts, the ledger's lock too, taken after it).
type billingState struct {
	topUps      map[uuid.UUID]billing.TopUp
	topUpByKey  map[topUpKey]uuid.UUID
	topUpByPay  map[string]uuid.UUID
	payouts     map[uuid.UUID]billing.Payout
	payees      map[uuid.UUID]billing.Payee
	payeeByAcct map[string]uuid.UUID
	holds       map[uuid.UUID][]billing.Hold // by owner, oldest first
	events      map[string]billing.StoredEvent
	eventOrder  []string
	done        map[string]bool
}

type topUpKey struct {
	advertiser uuid.UUID
	key        string
}

func newBillingState() billingState {
	return billingState{
		topUps: map[uuid.UUID]billing.TopUp{}, topUpByKey: map[topUpKey]uuid.UUID{}, topUpByPay: map[string]uuid.UUID{},
		payouts: map[uuid.UUID]billing.Payout{}, payees: map[uuid.UUID]billing.Payee{}, payeeByAcct: map[string]uuid.UUID{},
		holds: map[uuid.UUID][]billing.Hold{}, events: map[string]billing.StoredEvent{}, done: map[string]bool{},
	}
}

// Apply implements billing.Store: the records are checked first, then
// every posting is decided on a fork of the ledger's book, and only when
// all of it holds is anything changed.
func (s *Store) Apply(ctx context.Context, w billing.Write) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b := &s.billing
	if w.Processed != "" {
		e, ok := b.events[w.Processed]
		switch {
		case !ok:
			return billing.ErrEventNotFound
		case !e.ProcessedAt.IsZero():
			return billing.ErrAlreadyApplied
		}
	}
	if err := b.checkVersions(w); err != nil {
		return err
	}
	l := &s.ledger
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(w.Post) > 0 {
		fork := l.book.Fork(w.Post)
		now := time.Now().UTC()
		for _, t := range w.Post {
			if _, _, err := fork.Post(t, now); err != nil {
				return err
			}
		}
		for _, t := range w.Post {
			if _, _, err := l.postLocked(t); err != nil {
				return err // decided on the fork: cannot fail here
			}
		}
	}
	b.write(w, time.Now().UTC())
	return nil
}

// checkVersions refuses a Write whose records changed meanwhile (or that
// creates one that exists).
func (b *billingState) checkVersions(w billing.Write) error {
	check := func(exists bool, stored, given int64) error {
		if (given == 0 && exists) || (given != 0 && (!exists || stored != given)) {
			return billing.ErrVersionConflict
		}
		return nil
	}
	if t := w.TopUp; t != nil {
		cur, ok := b.topUps[t.ID]
		if err := check(ok, cur.Version, t.Version); err != nil {
			return err
		}
		if id, taken := b.topUpByKey[topUpKey{t.Advertiser, t.ClientKey}]; taken && id != t.ID {
			return billing.ErrVersionConflict
		}
	}
	if p := w.Payout; p != nil {
		cur, ok := b.payouts[p.ID]
		if err := check(ok, cur.Version, p.Version); err != nil {
			return err
		}
		if p.Status == billing.PayoutPending {
			for id, other := range b.payouts {
				if id != p.ID && other.Owner == p.Owner && other.Status == billing.PayoutPending {
					return billing.ErrPayoutInProgress
				}
			}
		}
	}
	if p := w.Payee; p != nil {
		cur, ok := b.payees[p.Owner]
		if err := check(ok, cur.Version, p.Version); err != nil {
			return err
		}
	}
	if h := w.Hold; h != nil {
		i := slices.IndexFunc(b.holds[h.Owner], func(x billing.Hold) bool { return x.ID == h.ID })
		var stored int64
		if i >= 0 {
			stored = b.holds[h.Owner][i].Version
		}
		if err := check(i >= 0, stored, h.Version); err != nil {
			return err
		}
	}
	return nil
}

// write stores w's records, their versions one more.
func (b *billingState) write(w billing.Write, now time.Time) {
	if t := w.TopUp; t != nil {
		c := *t
		c.Version++
		b.topUps[c.ID] = c
		b.topUpByKey[topUpKey{c.Advertiser, c.ClientKey}] = c.ID
		if c.PaymentID != "" {
			b.topUpByPay[c.PaymentID] = c.ID
		}
	}
	if p := w.Payout; p != nil {
		c := *p
		c.Version++
		b.payouts[c.ID] = c
	}
	if p := w.Payee; p != nil {
		c := *p
		c.RequirementsDue = slices.Clone(c.RequirementsDue)
		c.Version++
		if old, ok := b.payees[c.Owner]; ok {
			delete(b.payeeByAcct, old.ID)
		}
		b.payees[c.Owner] = c
		b.payeeByAcct[c.ID] = c.Owner
	}
	if h := w.Hold; h != nil {
		c := *h
		c.Version++
		list := b.holds[c.Owner]
		if i := slices.IndexFunc(list, func(x billing.Hold) bool { return x.ID == c.ID }); i >= 0 {
			list[i] = c
		} else {
			b.holds[c.Owner] = append(list, c)
		}
	}
	if w.Processed != "" {
		e := b.events[w.Processed]
		e.ProcessedAt = now
		b.events[w.Processed] = e
	}
	for _, k := range w.Done {
		b.done[k] = true
	}
}

// Done implements billing.Store.
func (s *Store) Done(ctx context.Context, key string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.billing.done[key], nil
}

// DoneKeys implements billing.Store.
func (s *Store) DoneKeys(ctx context.Context, keys []string) (map[string]bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := map[string]bool{}
	for _, k := range keys {
		if s.billing.done[k] {
			out[k] = true
		}
	}
	return out, nil
}

// TopUp implements billing.Store.
func (s *Store) TopUp(ctx context.Context, id uuid.UUID) (billing.TopUp, error) {
	if err := ctx.Err(); err != nil {
		return billing.TopUp{}, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	t, ok := s.billing.topUps[id]
	if !ok {
		return billing.TopUp{}, billing.ErrTopUpNotFound
	}
	return t, nil
}

// TopUpByClientKey implements billing.Store.
func (s *Store) TopUpByClientKey(ctx context.Context, advertiser uuid.UUID, key string) (billing.TopUp, error) {
	s.mu.RLock()
	id, ok := s.billing.topUpByKey[topUpKey{advertiser, key}]
	s.mu.RUnlock()
	if !ok {
		return billing.TopUp{}, billing.ErrTopUpNotFound
	}
	return s.TopUp(ctx, id)
}

// TopUpByPayment implements billing.Store.
func (s *Store) TopUpByPayment(ctx context.Context, paymentID string) (billing.TopUp, error) {
	s.mu.RLock()
	id, ok := s.billing.topUpByPay[paymentID]
	s.mu.RUnlock()
	if !ok {
		return billing.TopUp{}, billing.ErrTopUpNotFound
	}
	return s.TopUp(ctx, id)
}

// TopUpsSince implements billing.Store.
func (s *Store) TopUpsSince(ctx context.Context, advertiser uuid.UUID, since time.Time) ([]billing.TopUp, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []billing.TopUp
	for _, t := range s.billing.topUps {
		if t.Advertiser == advertiser && !t.CreatedAt.Before(since) {
			out = append(out, t)
		}
	}
	slices.SortFunc(out, func(a, b billing.TopUp) int { return bytes.Compare(b.ID[:], a.ID[:]) })
	return out, nil
}

// Payout implements billing.Store.
func (s *Store) Payout(ctx context.Context, id uuid.UUID) (billing.Payout, error) {
	if err := ctx.Err(); err != nil {
		return billing.Payout{}, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	p, ok := s.billing.payouts[id]
	if !ok {
		return billing.Payout{}, billing.ErrPayoutNotFound
	}
	return p, nil
}

// Payouts implements billing.Store: newest first (payout ids are UUIDv7,
// ordered by time).
func (s *Store) Payouts(ctx context.Context, f billing.PayoutFilter) ([]billing.Payout, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []billing.Payout
	for _, p := range s.billing.payouts {
		if (f.Owner == uuid.Nil || p.Owner == f.Owner) && (f.Status == "" || p.Status == f.Status) &&
			(f.Before == uuid.Nil || bytes.Compare(p.ID[:], f.Before[:]) < 0) {
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(a, b billing.Payout) int { return bytes.Compare(b.ID[:], a.ID[:]) })
	return out[:min(len(out), pageSize(f.Limit))], nil
}

// pageSize is a listing's page: 1 to 500, 50 by default.
func pageSize(limit int) int {
	if limit < 1 {
		return 50
	}
	return min(limit, 500)
}

// Payee implements billing.Store.
func (s *Store) Payee(ctx context.Context, owner uuid.UUID) (billing.Payee, error) {
	if err := ctx.Err(); err != nil {
		return billing.Payee{}, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	p, ok := s.billing.payees[owner]
	if !ok {
		return billing.Payee{}, billing.ErrPayeeNotFound
	}
	p.RequirementsDue = slices.Clone(p.RequirementsDue)
	return p, nil
}

// PayeeByAccountID implements billing.Store.
func (s *Store) PayeeByAccountID(ctx context.Context, accountID string) (billing.Payee, error) {
	s.mu.RLock()
	owner, ok := s.billing.payeeByAcct[accountID]
	s.mu.RUnlock()
	if !ok {
		return billing.Payee{}, billing.ErrPayeeNotFound
	}
	return s.Payee(ctx, owner)
}

// Holds implements billing.Store.
func (s *Store) Holds(ctx context.Context, owner uuid.UUID) ([]billing.Hold, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := slices.Clone(s.billing.holds[owner])
	slices.Reverse(out)
	return out, nil
}

// SaveEvent implements billing.Store.
func (s *Store) SaveEvent(ctx context.Context, e billing.StoredEvent) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.billing.events[e.ID]; ok {
		return false, nil
	}
	e.Payload = slices.Clone(e.Payload)
	e.ProcessedAt = time.Time{}
	s.billing.events[e.ID] = e
	s.billing.eventOrder = append(s.billing.eventOrder, e.ID)
	return true, nil
}

// Event implements billing.Store.
func (s *Store) Event(ctx context.Context, id string) (billing.StoredEvent, error) {
	if err := ctx.Err(); err != nil {
		return billing.StoredEvent{}, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	e, ok := s.billing.events[id]
	if !ok {
		return billing.StoredEvent{}, billing.ErrEventNotFound
	}
	return e, nil
}

// UnprocessedEvents implements billing.Store.
func (s *Store) UnprocessedEvents(ctx context.Context, limit int) ([]billing.StoredEvent, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []billing.StoredEvent
	for _, id := range s.billing.eventOrder {
		if e := s.billing.events[id]; e.ProcessedAt.IsZero() {
			out = append(out, e)
			if len(out) == pageSize(limit) {
				break
			}
		}
	}
	return out, nil
}

// AccountsAtLeast implements billing.Store.
func (s *Store) AccountsAtLeast(ctx context.Context, k billing.AccountKind, c billing.Currency, floor int64, after billing.AccountID, limit int) ([]billing.Balance, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	l := &s.ledger
	l.mu.RLock()
	defer l.mu.RUnlock()
	var out []billing.Balance
	for _, id := range slices.Sorted(maps.Keys(l.byAccount)) {
		if id <= after {
			continue
		}
		a, err := billing.ParseAccount(id)
		if err != nil || a.Kind != k || a.Currency != c {
			continue
		}
		if bal := l.book.Balance(id); bal.Micros >= floor {
			out = append(out, bal)
			if len(out) == posting.SweepPageSize(limit) {
				break
			}
		}
	}
	return out, nil
}

// EntryTotals implements billing.Store.
func (s *Store) EntryTotals(ctx context.Context, kinds []billing.TxKind, user uuid.UUID, from, to time.Time) (map[billing.AccountKind]int64, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	l := &s.ledger
	l.mu.RLock()
	defer l.mu.RUnlock()
	out := map[billing.AccountKind]int64{}
	for _, id := range l.order {
		t, _ := l.book.ByID(id)
		if !slices.Contains(kinds, t.Kind) || t.EffectiveAt.Before(from) || !t.EffectiveAt.Before(to) {
			continue
		}
		for _, e := range t.Entries {
			a, _ := billing.ParseAccount(e.Account)
			if user != uuid.Nil && a.User != uuid.Nil && a.User != user {
				continue
			}
			out[a.Kind] += a.Signed(e)
		}
	}
	return out, nil
}

// DailySpend implements billing.Store from the rollups.
func (s *Store) DailySpend(ctx context.Context, day time.Time, after uuid.UUID, limit int) ([]billing.OwnerSpend, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	from := day.UTC().Truncate(24 * time.Hour)
	to := from.Add(24 * time.Hour)
	type lineKey struct{ source, advertiser string }
	owners := map[uuid.UUID]*billing.OwnerSpend{}
	lines := map[uuid.UUID]map[lineKey]*billing.SpendLine{}
	st := &s.events
	st.mu.RLock()
	for k, c := range st.rows {
		if k.Hour.Before(from) || !k.Hour.Before(to) || k.AdKey == "" || bytes.Compare(k.Owner[:], after[:]) <= 0 {
			continue
		}
		os := owners[k.Owner]
		if os == nil {
			os = &billing.OwnerSpend{Owner: k.Owner}
			owners[k.Owner], lines[k.Owner] = os, map[lineKey]*billing.SpendLine{}
		}
		os.Events += c.Impressions + c.Clicks
		os.InvalidEvents += c.Impressions - c.ValidImpressions + c.Clicks - c.ValidClicks
		if c.SpendMicros == 0 && c.OwnerEarningsMicros == 0 {
			continue
		}
		source, _, _ := strings.Cut(k.AdKey, ":")
		lk := lineKey{source, k.Advertiser}
		l := lines[k.Owner][lk]
		if l == nil {
			l = &billing.SpendLine{Source: source, Advertiser: k.Advertiser}
			lines[k.Owner][lk] = l
		}
		l.SpendMicros += c.SpendMicros
		l.OwnerMicros += c.OwnerEarningsMicros
	}
	st.mu.RUnlock()
	ids := slices.SortedFunc(maps.Keys(owners), func(a, b uuid.UUID) int { return bytes.Compare(a[:], b[:]) })
	ids = ids[:min(len(ids), posting.SweepPageSize(limit))]
	out := make([]billing.OwnerSpend, 0, len(ids))
	for _, id := range ids {
		os := owners[id]
		for _, lk := range slices.SortedFunc(maps.Keys(lines[id]), func(a, b lineKey) int {
			return strings.Compare(a.source+"\x00"+a.advertiser, b.source+"\x00"+b.advertiser)
		}) {
			os.Lines = append(os.Lines, *lines[id][lk])
		}
		out = append(out, *os)
	}
	return out, nil
}

// AdvertiserSpendSince implements billing.Store from the rollups.
func (s *Store) AdvertiserSpendSince(ctx context.Context, advertisers []string, since time.Time) (map[string]int64, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	want := map[string]bool{}
	for _, a := range advertisers {
		want[a] = true
	}
	out := map[string]int64{}
	st := &s.events
	st.mu.RLock()
	defer st.mu.RUnlock()
	for k, c := range st.rows {
		if want[k.Advertiser] && !k.Hour.Before(since) && strings.HasPrefix(k.AdKey, "local:") {
			out[k.Advertiser] += c.SpendMicros
		}
	}
	return out, nil
}
