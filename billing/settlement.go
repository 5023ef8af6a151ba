package billing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"golang.org/x/sync/errgroup"

	"github.com/adshare/adshare/auth"
)

// Errors of settlement.
var (
	// ErrTooEarly: the day cannot be settled (or released) yet.
	ErrTooEarly = errors.New("billing: too early: the day is not final yet")
)

// settleKey is the idempotency key of owner's settlement of day.
func settleKey(owner uuid.UUID, day time.Time) string {
	return "settle:" + owner.String() + ":" + day.Format(time.DateOnly)
}

func releaseKey(owner uuid.UUID, day time.Time) string {
	return "release:" + owner.String() + ":" + day.Format(time.DateOnly)
}

// Settle turns the valid, billable spend of one UTC day into ledger
// transactions, one per owner (key "settle:<owner>:<day>"), splitting it
// between the owner (held) and the platform as analytics computed per
// event at the tier in force when each ad was served. Each local
// advertiser's budget pays for its ads in the owner's space, as far as it
// holds (the rest is platform:unfunded); Kevel ads are owed by Kevel
// (platform:kevel). Settle is idempotent (a second run posts nothing) and
// resumable (a run that stopped half way goes on where it stopped, since
// each owner's posting is keyed), reads only the rollups, and refuses a day
// whose events may still arrive (ErrTooEarly). Owners whose invalid traffic
// that day passed the threshold get a payout hold.
func (s *Service) Settle(ctx context.Context, day time.Time) error {
	day = dayOf(day)
	if s.now().Before(day.Add(24*time.Hour + s.cfg.SettleLag)) {
		return ErrTooEarly
	}
	done := "settled:" + day.Format(time.DateOnly)
	if ok, err := s.store.Done(ctx, done); err != nil || ok {
		return err
	}
	var after uuid.UUID
	var posted atomic.Int64
	owners := 0
	for {
		page, err := s.store.DailySpend(ctx, day, after, settlePageSize)
		if err != nil {
			return fmt.Errorf("billing: settle %s: %w", day.Format(time.DateOnly), err)
		}
		err = s.eachOwner(ctx, page, func(ctx context.Context, os OwnerSpend) error {
			ok, err := s.settleOwner(ctx, day, os)
			if err != nil {
				return fmt.Errorf("billing: settle %s for %s: %w", day.Format(time.DateOnly), os.Owner, err)
			}
			if ok {
				posted.Add(1)
			}
			s.holdOnInvalidTraffic(ctx, day, os)
			return nil
		})
		if err != nil {
			return err
		}
		owners += len(page)
		if len(page) < settlePageSize {
			break
		}
		after = page[len(page)-1].Owner
	}
	if err := s.store.Apply(ctx, Write{Done: []string{done}}); err != nil {
		return err
	}
	s.logger.InfoContext(ctx, "billing: day settled", slog.String("day", day.Format(time.DateOnly)),
		slog.Int("owners", owners), slog.Int64("posted", posted.Load()))
	return nil
}

// eachOwner runs fn for every owner of page, SettleWorkers at once; the
// first error stops the rest from starting and is returned once those
// running end. Each owner's posting is keyed, so the order among owners
// changes no balance: a budget too small for its spend pays as far as it
// goes whichever owner's settlement drains it.
func (s *Service) eachOwner(ctx context.Context, page []OwnerSpend, fn func(context.Context, OwnerSpend) error) error {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(s.cfg.SettleWorkers)
	for _, os := range page {
		g.Go(func() error {
			if err := ctx.Err(); err != nil {
				return err
			}
			return fn(ctx, os)
		})
	}
	return g.Wait()
}

// settleOwner posts one owner's settlement of day; posted is false when it
// was posted before (or there was nothing to post).
func (s *Service) settleOwner(ctx context.Context, day time.Time, os OwnerSpend) (bool, error) {
	key := settleKey(os.Owner, day)
	// A budget may shrink between reading it and posting (another owner's
	// settlement, running at the same time): read again and retry. Each
	// failure means another posting drained the budget, so the retries
	// end: at the latest when it is empty.
	for attempt := 0; ; attempt++ {
		t, drained, err := s.settlementTx(ctx, key, day, os)
		if err != nil || len(t.Entries) == 0 {
			return false, err
		}
		_, posted, err := s.store.Post(ctx, t)
		if errors.Is(err, ErrInsufficientFunds) && attempt < 10*s.cfg.SettleWorkers {
			continue
		}
		if posted {
			s.alertDrained(ctx, day, drained)
		}
		return posted, err
	}
}

// alertDrained tells each advertiser whose budget a settlement just
// emptied. Only the posting that took a budget's last micros names it (a
// racing one read the budget again and found it empty), so each emptying
// alerts once.
func (s *Service) alertDrained(ctx context.Context, day time.Time, advertisers []uuid.UUID) {
	if s.cfg.Alerts == nil {
		return
	}
	for _, adv := range advertisers {
		s.cfg.Alerts.Alert(ctx, adv, "budget_exhausted", "Your ad budget was used up by the ads shown on "+
			day.Format(time.DateOnly)+": your ads run again after a top-up.")
	}
}

// settlementTx builds an owner's settlement of day, and names the
// advertisers whose budgets it empties.
func (s *Service) settlementTx(ctx context.Context, key string, day time.Time, os OwnerSpend) (Transaction, []uuid.UUID, error) {
	if _, err := s.store.TransactionByKey(ctx, key); err == nil {
		return Transaction{}, nil, nil // settled before: do not read budgets for nothing
	} else if !errors.Is(err, ErrTransactionNotFound) {
		return Transaction{}, nil, err
	}
	spend := map[AccountID]int64{} // what each budget account should pay
	var kevel, owner, gross int64
	for _, l := range os.Lines {
		if l.SpendMicros <= 0 {
			continue
		}
		gross += l.SpendMicros
		owner += l.OwnerMicros
		if l.Source != "local" {
			kevel += l.SpendMicros
			continue
		}
		adv, err := uuid.Parse(l.Advertiser)
		if err != nil {
			spend[s.platform(PlatformUnfunded)] += l.SpendMicros // no user pays for it
			continue
		}
		spend[s.account(Budget, adv)] += l.SpendMicros
	}
	if gross == 0 {
		return Transaction{}, nil, nil
	}
	budgets := make([]AccountID, 0, len(spend))
	for id := range spend {
		if a, _ := ParseAccount(id); a.Kind == Budget {
			budgets = append(budgets, id)
		}
	}
	slices.Sort(budgets)
	balances, err := s.store.Balances(ctx, budgets)
	if err != nil {
		return Transaction{}, nil, err
	}
	t := Transaction{Key: key, Kind: TxSettlement, EffectiveAt: day,
		Memo: "settlement of " + day.Format(time.DateOnly), Refs: map[string]string{"owner": os.Owner.String()}}
	var unfunded int64
	var drained []uuid.UUID
	for _, id := range budgets {
		pay := min(spend[id], balances[id].Micros)
		if pay > 0 {
			t.Entries = append(t.Entries, Entry{Account: id, Side: Debit, Amount: pay})
			if pay == balances[id].Micros {
				a, _ := ParseAccount(id)
				drained = append(drained, a.User)
			}
		}
		unfunded += spend[id] - pay
	}
	unfunded += spend[s.platform(PlatformUnfunded)]
	if unfunded > 0 {
		t.Entries = append(t.Entries, Entry{Account: s.platform(PlatformUnfunded), Side: Debit, Amount: unfunded})
	}
	if kevel > 0 {
		t.Entries = append(t.Entries, Entry{Account: s.platform(PlatformKevel), Side: Debit, Amount: kevel})
	}
	if owner > 0 {
		t.Entries = append(t.Entries, Entry{Account: s.account(Held, os.Owner), Side: Credit, Amount: owner})
	}
	if rest := gross - owner; rest > 0 {
		t.Entries = append(t.Entries, Entry{Account: s.platform(PlatformRevenue), Side: Credit, Amount: rest})
	}
	if len(t.Entries) > MaxEntries {
		return Transaction{}, nil, fmt.Errorf("billing: %d advertisers in one owner's day: more than a transaction holds", len(budgets))
	}
	return t, drained, nil
}

// holdOnInvalidTraffic holds an owner's payouts when too much of their
// day was invalid.
func (s *Service) holdOnInvalidTraffic(ctx context.Context, day time.Time, os OwnerSpend) {
	total := os.Events
	if total < s.cfg.InvalidShareMinEvents || os.InvalidEvents*10_000 <= int64(s.cfg.InvalidShareHold)*total {
		return
	}
	id := uuid.NewSHA1(uuid.NameSpaceOID, []byte("ivt-hold:"+os.Owner.String()+":"+day.Format(time.DateOnly)))
	h := Hold{ID: id, Owner: os.Owner, Reason: HoldInvalidTraffic, CreatedAt: s.now().UTC(),
		Note: fmt.Sprintf("%d of %d events on %s were invalid", os.InvalidEvents, total, day.Format(time.DateOnly))}
	err := s.store.Apply(ctx, Write{Hold: &h})
	switch {
	case errors.Is(err, ErrVersionConflict):
		return // held for that day already
	case err != nil:
		s.logger.WarnContext(ctx, "billing: invalid-traffic hold not recorded", slog.Any("error", err))
		return
	}
	s.record(ctx, auth.AuditEvent{Action: AuditHoldPlaced, TargetType: "user", TargetID: os.Owner.String(), Reason: string(HoldInvalidTraffic),
		Details: map[string]string{"day": day.Format(time.DateOnly), "invalid": strconv.FormatInt(os.InvalidEvents, 10), "events": strconv.FormatInt(total, 10)}})
}

// Release makes the earnings settled on day available, once the hold
// window after it has passed (ErrTooEarly before): per owner, Dr held;
// Cr owed up to what the owner owes, Cr available the rest. A day not
// settled yet is settled first. Idempotent and resumable like Settle.
func (s *Service) Release(ctx context.Context, day time.Time) error {
	day = dayOf(day)
	if s.now().Before(day.Add(24*time.Hour + s.cfg.HoldWindow)) {
		return ErrTooEarly
	}
	done := "released:" + day.Format(time.DateOnly)
	if ok, err := s.store.Done(ctx, done); err != nil || ok {
		return err
	}
	settled, err := s.store.Done(ctx, "settled:"+day.Format(time.DateOnly))
	if err != nil {
		return err
	}
	if !settled {
		// A day the sweep never settled (the deployment is newer than the
		// hold window, or every instance was down for longer than the
		// sweep looks back): settle it now; it is long final.
		if err := s.Settle(ctx, day); err != nil {
			return fmt.Errorf("billing: release %s: %w", day.Format(time.DateOnly), err)
		}
	}
	var after uuid.UUID
	for {
		page, err := s.store.DailySpend(ctx, day, after, settlePageSize)
		if err != nil {
			return fmt.Errorf("billing: release %s: %w", day.Format(time.DateOnly), err)
		}
		err = s.eachOwner(ctx, page, func(ctx context.Context, os OwnerSpend) error {
			if err := s.releaseOwner(ctx, day, os.Owner); err != nil {
				return fmt.Errorf("billing: release %s for %s: %w", day.Format(time.DateOnly), os.Owner, err)
			}
			return nil
		})
		if err != nil {
			return err
		}
		if len(page) < settlePageSize {
			return s.store.Apply(ctx, Write{Done: []string{done}})
		}
		after = page[len(page)-1].Owner
	}
}

func (s *Service) releaseOwner(ctx context.Context, day time.Time, owner uuid.UUID) error {
	key := releaseKey(owner, day)
	if _, err := s.store.TransactionByKey(ctx, key); err == nil {
		return nil
	} else if !errors.Is(err, ErrTransactionNotFound) {
		return err
	}
	settled, err := s.store.TransactionByKey(ctx, settleKey(owner, day))
	if errors.Is(err, ErrTransactionNotFound) {
		return nil // nothing was held that day (or it is not settled yet: the sweep settles first)
	}
	if err != nil {
		return err
	}
	held := s.account(Held, owner)
	var amount int64
	for _, e := range settled.Entries {
		if e.Account == held && e.Side == Credit {
			amount += e.Amount
		}
	}
	if amount == 0 {
		return nil
	}
	owedID := s.account(Owed, owner)
	bal, err := s.store.Balances(ctx, []AccountID{owedID})
	if err != nil {
		return err
	}
	repay := min(amount, bal[owedID].Micros)
	t := Transaction{Key: key, Kind: TxRelease, EffectiveAt: day, Memo: "release of " + day.Format(time.DateOnly),
		Refs:    map[string]string{"owner": owner.String()},
		Entries: []Entry{{Account: held, Side: Debit, Amount: amount}}}
	if repay > 0 {
		t.Entries = append(t.Entries, Entry{Account: owedID, Side: Credit, Amount: repay})
	}
	if rest := amount - repay; rest > 0 {
		t.Entries = append(t.Entries, Entry{Account: s.account(Available, owner), Side: Credit, Amount: rest})
	}
	_, _, err = s.store.Post(ctx, t)
	return err
}
