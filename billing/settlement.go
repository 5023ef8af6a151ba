package billing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
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
// transactions, in two phases whose postings are each keyed, so that Settle
// is idempotent (a second run posts nothing) and resumable (a run that
// stopped half way goes on where it stopped):
//
//   - per owner ("settle:<owner>:<day>"): Dr platform:settlement (what local
//     advertisers' ads spent in the owner's space), Dr platform:kevel (Kevel
//     ads), Dr platform:unfunded (spend no user can be charged for); Cr
//     held:<owner> (the owner's share as analytics computed it per event, at
//     the tier in force when each ad was served), Cr platform:revenue (the
//     rest). An owner's posting depends on the rollups alone and touches no
//     advertiser's account, so owners are posted many at once without
//     waiting on each other's budgets.
//   - per advertiser ("settle-advertiser:<advertiser>:<day>"), once every
//     owner is posted: Dr budget:<advertiser> (the day's spend, as far as the
//     budget holds), Dr platform:unfunded (the rest); Cr platform:settlement
//     (the day's spend). The settlement account is back at zero once a day is
//     settled.
//
// Settle reads only the rollups, and refuses a day whose events may still
// arrive (ErrTooEarly). Owners whose invalid traffic that day passed the
// threshold get a payout hold; an advertiser whose budget the day emptied
// is told (budget_exhausted).
func (s *Service) Settle(ctx context.Context, day time.Time) error {
	day = dayOf(day)
	if s.now().Before(day.Add(24*time.Hour + s.cfg.SettleLag)) {
		return ErrTooEarly
	}
	done := settledKey(day)
	if ok, err := s.store.Done(ctx, done); err != nil || ok {
		return err
	}
	var after uuid.UUID
	var posted atomic.Int64
	owners := 0
	spend := &advertiserSpend{byAdvertiser: map[uuid.UUID]int64{}}
	for {
		page, err := s.store.DailySpend(ctx, day, after, settlePageSize)
		if err != nil {
			return fmt.Errorf("billing: settle %s: %w", day.Format(time.DateOnly), err)
		}
		err = s.eachOwner(ctx, page, func(ctx context.Context, os OwnerSpend) error {
			ok, err := s.settleOwner(ctx, day, os, spend)
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
	charged, err := s.chargeAdvertisers(ctx, day, spend.byAdvertiser)
	if err != nil {
		return err
	}
	if err := s.store.Apply(ctx, Write{Done: []string{done}}); err != nil {
		return err
	}
	s.logger.InfoContext(ctx, "billing: day settled", slog.String("day", day.Format(time.DateOnly)),
		slog.Int("owners", owners), slog.Int64("posted", posted.Load()), slog.Int("advertisers", charged))
	return nil
}

// advertiserSpend sums what each local advertiser's ads spent over the
// owners of a day, as the owners' settlements read it.
type advertiserSpend struct {
	mu           sync.Mutex
	byAdvertiser map[uuid.UUID]int64
}

func (a *advertiserSpend) add(adv uuid.UUID, micros int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.byAdvertiser[adv] += micros
}

// eachOwner runs fn for every owner of page, SettleWorkers at once; the
// first error stops the rest from starting and is returned once those
// running end. Each owner's posting is keyed and depends on the rollups
// alone, so the order among owners changes nothing.
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

// settleOwner posts one owner's settlement of day and adds what local
// advertisers spent to spend; posted is false when it was posted before
// (or there was nothing to post).
func (s *Service) settleOwner(ctx context.Context, day time.Time, os OwnerSpend, spend *advertiserSpend) (bool, error) {
	t := Transaction{Key: settleKey(os.Owner, day), Kind: TxSettlement, EffectiveAt: day,
		Memo: "settlement of " + day.Format(time.DateOnly), Refs: map[string]string{"owner": os.Owner.String()}}
	var local, kevel, unfunded, owner, gross int64
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
			unfunded += l.SpendMicros // no user pays for it
			continue
		}
		local += l.SpendMicros
		spend.add(adv, l.SpendMicros)
	}
	if gross == 0 {
		return false, nil
	}
	for _, e := range []Entry{
		{Account: s.platform(PlatformSettlement), Side: Debit, Amount: local},
		{Account: s.platform(PlatformKevel), Side: Debit, Amount: kevel},
		{Account: s.platform(PlatformUnfunded), Side: Debit, Amount: unfunded},
		{Account: s.account(Held, os.Owner), Side: Credit, Amount: owner},
		{Account: s.platform(PlatformRevenue), Side: Credit, Amount: gross - owner},
	} {
		if e.Amount > 0 {
			t.Entries = append(t.Entries, e)
		}
	}
	_, posted, err := s.store.Post(ctx, t)
	if errors.Is(err, ErrKeyConflict) {
		// Posted before from other rollups (an event that arrived after a
		// run that stopped half way): the first posting stands.
		s.logger.WarnContext(ctx, "billing: an owner's settlement was posted before with other figures; it stands",
			slog.String("owner", os.Owner.String()), slog.String("day", day.Format(time.DateOnly)))
		return false, nil
	}
	return posted, err
}

// chargeAdvertisers posts each advertiser's spend of day against its
// budget, SettleWorkers at once (each touches its own budget), and returns
// how many it posted.
func (s *Service) chargeAdvertisers(ctx context.Context, day time.Time, spend map[uuid.UUID]int64) (int, error) {
	advertisers := make([]uuid.UUID, 0, len(spend))
	for adv := range spend {
		advertisers = append(advertisers, adv)
	}
	slices.SortFunc(advertisers, func(a, b uuid.UUID) int { return strings.Compare(a.String(), b.String()) })
	var posted atomic.Int64
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(s.cfg.SettleWorkers)
	for _, adv := range advertisers {
		g.Go(func() error {
			if err := ctx.Err(); err != nil {
				return err
			}
			ok, err := s.chargeAdvertiser(ctx, day, adv, spend[adv])
			if err != nil {
				return fmt.Errorf("billing: settle %s for advertiser %s: %w", day.Format(time.DateOnly), adv, err)
			}
			if ok {
				posted.Add(1)
			}
			return nil
		})
	}
	err := g.Wait()
	return int(posted.Load()), err
}

// chargeAdvertiser posts one advertiser's spend of day: the budget pays as
// far as it holds, platform:unfunded the rest. A budget may shrink between
// reading it and posting (a refund): read again and retry.
func (s *Service) chargeAdvertiser(ctx context.Context, day time.Time, adv uuid.UUID, micros int64) (bool, error) {
	key := "settle-advertiser:" + adv.String() + ":" + day.Format(time.DateOnly)
	if _, err := s.store.TransactionByKey(ctx, key); err == nil {
		return false, nil // charged before: do not read the budget for nothing
	} else if !errors.Is(err, ErrTransactionNotFound) {
		return false, err
	}
	budget := s.account(Budget, adv)
	for attempt := 0; ; attempt++ {
		bal, err := s.store.Balances(ctx, []AccountID{budget})
		if err != nil {
			return false, err
		}
		pay := min(micros, bal[budget].Micros)
		t := Transaction{Key: key, Kind: TxSettlement, EffectiveAt: day,
			Memo: "advertiser's spend of " + day.Format(time.DateOnly), Refs: map[string]string{"advertiser": adv.String()},
			Entries: []Entry{{Account: s.platform(PlatformSettlement), Side: Credit, Amount: micros}}}
		if pay > 0 {
			t.Entries = append(t.Entries, Entry{Account: budget, Side: Debit, Amount: pay})
		}
		if rest := micros - pay; rest > 0 {
			t.Entries = append(t.Entries, Entry{Account: s.platform(PlatformUnfunded), Side: Debit, Amount: rest})
		}
		_, posted, err := s.store.Post(ctx, t)
		if errors.Is(err, ErrInsufficientFunds) && attempt < 10 {
			continue
		}
		if posted && pay > 0 && pay == bal[budget].Micros {
			s.alertDrained(ctx, day, adv)
		}
		return posted, err
	}
}

// alertDrained tells an advertiser whose budget the day's settlement
// emptied: once, since its posting is keyed.
func (s *Service) alertDrained(ctx context.Context, day time.Time, adv uuid.UUID) {
	if s.cfg.Alerts == nil {
		return
	}
	s.cfg.Alerts.Alert(ctx, adv, "budget_exhausted", "Your ad budget was used up by the ads shown on "+
		day.Format(time.DateOnly)+": your ads run again after a top-up.")
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
	settled, err := s.store.Done(ctx, settledKey(day))
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
