package billing

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/adshare/adshare/auth"
)

// Balances are a user's money, in micros of the service's currency.
type Balances struct {
	Currency Currency
	// Budget is an advertiser's unspent budget (settled spend deducted;
	// spend since the last settlement is in UnsettledSpend).
	Budget         int64
	UnsettledSpend int64
	// Held, Available and InTransit are an owner's earnings: within the
	// hold window, payable, and on their way. Owed is what they owe back.
	Held, Available, InTransit, Owed int64
	// Holds are the holds on the owner's payouts in force.
	Holds []Hold
	// Payee is the owner's payout account, when they have one.
	Payee *Payee
}

// Balances returns the user's balances: the caller's own, or anyone's
// with PermBillingManage (another's, without it: auth.ErrUserNotFound).
// The caller's own view leaves out the holds' notes, which are for admins.
func (s *Service) Balances(ctx context.Context, p auth.Principal, user uuid.UUID) (Balances, error) {
	if err := s.authorizeFor(ctx, p, user); err != nil {
		return Balances{}, err
	}
	kinds := []AccountKind{Budget, Held, Available, InTransit, Owed}
	ids := make([]AccountID, len(kinds))
	for i, k := range kinds {
		ids[i] = s.account(k, user)
	}
	bal, err := s.store.Balances(ctx, ids)
	if err != nil {
		return Balances{}, err
	}
	out := Balances{Currency: s.cfg.Currency, Budget: bal[ids[0]].Micros, Held: bal[ids[1]].Micros,
		Available: bal[ids[2]].Micros, InTransit: bal[ids[3]].Micros, Owed: bal[ids[4]].Micros}
	unsettled, err := s.unsettledSpend(ctx, []uuid.UUID{user})
	if err != nil {
		return Balances{}, err
	}
	out.UnsettledSpend = unsettled[user]
	holds, err := s.store.Holds(ctx, user)
	if err != nil {
		return Balances{}, err
	}
	out.Holds = activeHolds(holds, s.now())
	if p.UserID == user {
		out.Holds = ownHolds(out.Holds)
	}
	if payee, err := s.store.Payee(ctx, user); err == nil {
		out.Payee = &payee
	}
	return out, nil
}

// authorizeFor lets a caller act on user: themselves, or anyone with
// PermBillingManage (others' records answer as not found, so ids cannot be
// probed).
func (s *Service) authorizeFor(ctx context.Context, p auth.Principal, user uuid.UUID) error {
	if p.UserID == user && p.UserID != uuid.Nil {
		return s.cfg.Auth.Authorize(ctx, p, auth.PermProfile)
	}
	if err := s.cfg.Auth.Authorize(ctx, p, auth.PermBillingManage); err != nil {
		return auth.ErrUserNotFound
	}
	return nil
}

// Transactions lists the ledger transactions of a user (the caller, or
// anyone's with PermBillingManage; uuid.Nil with it: all), newest first,
// limit at a time (1 to 500; 0: 50) from before on.
//
// The caller's own listing is their statement: each transaction with only
// the entries on their own accounts and only the refs that name their own
// records (the top-up, the payout). A transaction also moves other users'
// and the platform's money (a settlement debits an advertiser's budget
// and credits the platform its share); who they are and what they got is
// not the caller's to see. Listing another user's, or everyone's, shows
// the transactions whole.
func (s *Service) Transactions(ctx context.Context, p auth.Principal, user uuid.UUID, before TxCursor, limit int) ([]Transaction, error) {
	if user == uuid.Nil {
		if err := s.cfg.Auth.Authorize(ctx, p, auth.PermBillingManage); err != nil {
			return nil, err
		}
	} else if err := s.authorizeFor(ctx, p, user); err != nil {
		return nil, err
	}
	txs, err := s.store.Transactions(ctx, TxFilter{User: user, Before: before, Limit: limit})
	if err != nil || p.UserID != user {
		return txs, err
	}
	for i, t := range txs {
		txs[i] = statementOf(t, user)
	}
	return txs, nil
}

// statementRefs are the refs a user's own statement keeps: they name the
// user's own records.
var statementRefs = []string{"topup", "payout"}

// statementOf is t as user's statement shows it: the entries on user's
// accounts and the refs of statementRefs.
func statementOf(t Transaction, user uuid.UUID) Transaction {
	out := t.Clone()
	out.Entries = out.Entries[:0]
	for _, e := range t.Entries {
		if a, err := ParseAccount(e.Account); err == nil && a.User == user {
			out.Entries = append(out.Entries, e)
		}
	}
	out.Refs = nil
	for _, k := range statementRefs {
		if v, ok := t.Refs[k]; ok {
			if out.Refs == nil {
				out.Refs = map[string]string{}
			}
			out.Refs[k] = v
		}
	}
	return out
}

// ownHolds is holds as their owner sees them: without the admins' notes.
func ownHolds(holds []Hold) []Hold {
	out := make([]Hold, len(holds))
	for i, h := range holds {
		h.Note = ""
		out[i] = h
	}
	return out
}

// Payouts lists payouts: the caller's, or anyone's (or all, uuid.Nil)
// with PermBillingManage.
func (s *Service) Payouts(ctx context.Context, p auth.Principal, owner uuid.UUID, f PayoutFilter) ([]Payout, error) {
	if owner == uuid.Nil {
		if err := s.cfg.Auth.Authorize(ctx, p, auth.PermBillingManage); err != nil {
			return nil, err
		}
	} else if err := s.authorizeFor(ctx, p, owner); err != nil {
		return nil, err
	}
	f.Owner = owner
	return s.store.Payouts(ctx, f)
}

// Payout returns one payout: the caller's, or anyone's with
// PermBillingManage (ErrPayoutNotFound otherwise).
func (s *Service) Payout(ctx context.Context, p auth.Principal, id uuid.UUID) (Payout, error) {
	po, err := s.store.Payout(ctx, id)
	if err != nil {
		return Payout{}, err
	}
	if err := s.authorizeFor(ctx, p, po.Owner); err != nil {
		return Payout{}, ErrPayoutNotFound
	}
	return po, nil
}

// TopUp returns one top-up: the caller's, or anyone's with
// PermBillingManage (ErrTopUpNotFound otherwise).
func (s *Service) TopUp(ctx context.Context, p auth.Principal, id uuid.UUID) (TopUp, error) {
	t, err := s.store.TopUp(ctx, id)
	if err != nil {
		return TopUp{}, err
	}
	if err := s.authorizeFor(ctx, p, t.Advertiser); err != nil {
		return TopUp{}, ErrTopUpNotFound
	}
	return t, nil
}

// SettledFigures are final money figures, in micros.
type SettledFigures struct {
	OwnerMicros, PlatformMicros, PaidOutMicros int64
}

// Settled sums what settlement made final for owner (uuid.Nil: everyone)
// in [from, to), and what was paid out then: the final and paid-out
// figures of the revenue report (analytics.Settled, through an adapter in
// the assembly).
func (s *Service) Settled(ctx context.Context, owner uuid.UUID, from, to time.Time) (SettledFigures, error) {
	settled, err := s.store.EntryTotals(ctx, []TxKind{TxSettlement}, owner, from, to)
	if err != nil {
		return SettledFigures{}, err
	}
	paid, err := s.store.EntryTotals(ctx, []TxKind{TxPayoutPaid}, owner, from, to)
	if err != nil {
		return SettledFigures{}, err
	}
	out := SettledFigures{OwnerMicros: settled[Held], PaidOutMicros: -paid[InTransit]}
	if owner == uuid.Nil {
		out.PlatformMicros = settled[PlatformRevenue]
	}
	return out, nil
}

// unsettledSpend is what each advertiser spent since the last day
// settled: the part of their budget that is spoken for.
func (s *Service) unsettledSpend(ctx context.Context, advertisers []uuid.UUID) (map[uuid.UUID]int64, error) {
	since, err := s.firstUnsettledDay(ctx)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(advertisers))
	for i, a := range advertisers {
		ids[i] = a.String()
	}
	spent, err := s.store.AdvertiserSpendSince(ctx, ids, since)
	if err != nil {
		return nil, err
	}
	out := make(map[uuid.UUID]int64, len(advertisers))
	for _, a := range advertisers {
		out[a] = spent[a.String()]
	}
	return out, nil
}

// firstUnsettledDay is the oldest of the recent days not settled yet,
// after the newest settled one. Every read of a balance and every
// funding lookup asks it: the days known settled are not asked again, and
// the rest are asked in one read.
func (s *Service) firstUnsettledDay(ctx context.Context) (time.Time, error) {
	today := dayOf(s.now())
	known := time.Unix(s.settledThrough.Load(), 0).UTC()
	var days []time.Time // newest first
	var keys []string
	for i := 1; i <= sweepDays; i++ {
		day := today.Add(-time.Duration(i) * 24 * time.Hour)
		if !day.After(known) {
			break
		}
		days, keys = append(days, day), append(keys, settledKey(day))
	}
	if len(keys) == 0 {
		return today, nil
	}
	done, err := s.store.DoneKeys(ctx, keys)
	if err != nil {
		return time.Time{}, err
	}
	first := today
	for i, day := range days {
		if done[keys[i]] {
			s.noteSettled(day)
			break
		}
		first = day
	}
	return first, nil
}

// settledKey is the Write.Done key of a day's settlement.
func settledKey(day time.Time) string { return "settled:" + day.Format(time.DateOnly) }

// noteSettled records that day is settled, unless a later one is known.
func (s *Service) noteSettled(day time.Time) {
	for {
		was := s.settledThrough.Load()
		if day.Unix() <= was || s.settledThrough.CompareAndSwap(was, day.Unix()) {
			return
		}
	}
}

// Funded reports, for each advertiser, whether their budget still covers
// more spend (what is left after the spend not settled yet): the ad
// spaces' inventory serves only funded advertisers' ads. An advertiser's
// last ads may overshoot by what is served between two refreshes of the
// engine; settlement books that overshoot as platform:unfunded.
func (s *Service) Funded(ctx context.Context, advertisers []uuid.UUID) (map[uuid.UUID]bool, error) {
	ids := make([]AccountID, len(advertisers))
	for i, a := range advertisers {
		ids[i] = s.account(Budget, a)
	}
	bal, err := s.store.Balances(ctx, ids)
	if err != nil {
		return nil, err
	}
	spent, err := s.unsettledSpend(ctx, advertisers)
	if err != nil {
		return nil, err
	}
	out := make(map[uuid.UUID]bool, len(advertisers))
	for i, a := range advertisers {
		out[a] = bal[ids[i]].Micros-spent[a] > 0
	}
	return out, nil
}
