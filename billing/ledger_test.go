package billing_test

import (
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/billing"
	"github.com/adshare/adshare/internal/errs"
)

var (
	advertiser = uuid.MustParse("0190c2a4-7d7e-7b3a-9f0e-1c2d3e4f5a6b")
	owner      = uuid.MustParse("0190c2a4-7d7e-7b3a-9f0e-abcdefabcdef")
	effective  = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
)

// settlement is a valid transaction: an advertiser's spend split between
// an owner and the platform.
func settlement() billing.Transaction {
	return billing.Transaction{
		Key:  "settle:" + owner.String() + ":2026-12-01",
		Kind: billing.TxSettlement,
		Entries: []billing.Entry{
			{Account: billing.UserAccount(billing.Budget, advertiser, billing.USD), Side: billing.Debit, Amount: 1_000_000},
			{Account: billing.UserAccount(billing.Held, owner, billing.USD), Side: billing.Credit, Amount: 700_000},
			{Account: billing.PlatformAccount(billing.PlatformRevenue, billing.USD), Side: billing.Credit, Amount: 300_000},
		},
		EffectiveAt: effective,
		Memo:        "day settled",
		Refs:        map[string]string{"day": "2026-12-01", "owner": owner.String()},
	}
}

func TestAccountKindsFixSideAndSign(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		kind        billing.AccountKind
		normal      billing.Side
		nonNegative bool
	}{
		{billing.Budget, billing.Credit, true},
		{billing.Held, billing.Credit, true},
		{billing.Available, billing.Credit, true},
		{billing.InTransit, billing.Credit, true},
		{billing.Owed, billing.Debit, true},
		{billing.PlatformRevenue, billing.Credit, false},
		{billing.PlatformCash, billing.Debit, false},
		{billing.PlatformKevel, billing.Debit, false},
		{billing.PlatformFees, billing.Debit, false},
		{billing.PlatformRefunds, billing.Debit, false},
		{billing.PlatformDisputes, billing.Debit, false},
		{billing.PlatformUnfunded, billing.Debit, false},
	} {
		id := billing.PlatformAccount(tt.kind, "eur")
		if tt.nonNegative {
			id = billing.UserAccount(tt.kind, owner, "eur")
		}
		a, err := billing.ParseAccount(id)
		require.NoError(t, err, id)
		require.Equal(t, billing.Account{ID: id, Kind: tt.kind, User: a.User, Currency: "eur"}, a)
		require.Equal(t, tt.nonNegative, a.User == owner, "%s: a user's account names its user", id)
		require.Equal(t, tt.normal, a.Normal(), id)
		require.Equal(t, tt.nonNegative, a.NonNegative(), id)
		require.Equal(t, int64(5), a.Signed(billing.Entry{Account: id, Side: tt.normal, Amount: 5}), id)
		other := billing.Debit
		if tt.normal == billing.Debit {
			other = billing.Credit
		}
		require.Equal(t, int64(-5), a.Signed(billing.Entry{Account: id, Side: other, Amount: 5}), id)
	}
	require.Equal(t, billing.AccountID("budget:"+advertiser.String()+":usd"), billing.UserAccount(billing.Budget, advertiser, billing.USD))
	require.Equal(t, billing.AccountID("platform:revenue:usd"), billing.PlatformAccount(billing.PlatformRevenue, billing.USD))
	require.Empty(t, billing.Account{Kind: "nope"}.Normal())
	require.False(t, billing.Account{Kind: "nope"}.NonNegative())
}

func TestParseAccountRefusesAllButTheCanonicalSpelling(t *testing.T) {
	t.Parallel()
	u := owner.String()
	for _, tt := range []struct {
		description string
		id          string
	}{
		{"empty", ""},
		{"a kind alone", "budget"},
		{"a user kind without its user", "budget:usd"},
		{"no currency", "platform:revenue"},
		{"an upper-case currency", "platform:revenue:USD"},
		{"an unsupported currency", "platform:revenue:xxx"},
		{"an unknown platform kind", "platform:budget:usd"},
		{"a platform kind without its prefix", "revenue:usd"},
		{"a platform account with a user", "platform:revenue:" + u + ":usd"},
		{"an unknown user kind", "wallet:" + u + ":usd"},
		{"an upper-case UUID", "budget:" + strings.ToUpper(u) + ":usd"},
		{"a UUID without hyphens", "budget:" + strings.ReplaceAll(u, "-", "") + ":usd"},
		{"a braced UUID", "budget:{" + u + "}:usd"},
		{"a URN UUID", "budget:urn:uuid:" + u + ":usd"},
		{"the nil UUID", "budget:" + uuid.Nil.String() + ":usd"},
		{"a trailing part", "held:" + u + ":usd:x"},
		{"a space", "held:" + u + ": usd"},
		{"too long", "held:" + u + strings.Repeat("x", 100) + ":usd"},
	} {
		_, err := billing.ParseAccount(billing.AccountID(tt.id))
		require.ErrorIs(t, err, billing.ErrInvalidAccount, tt.description)
	}
}

// FuzzParseAccount holds that an id parses only when it is the one its
// parts format to, so that one account never has two ids.
func FuzzParseAccount(f *testing.F) {
	f.Add(string(billing.UserAccount(billing.Budget, advertiser, billing.USD)))
	f.Add(string(billing.UserAccount(billing.Owed, owner, "jpy")))
	f.Add(string(billing.PlatformAccount(billing.PlatformUnfunded, "gbp")))
	f.Add("budget:" + strings.ToUpper(owner.String()) + ":usd")
	f.Add("platform:revenue:" + owner.String() + ":usd")
	f.Add("::")
	f.Fuzz(func(t *testing.T, s string) {
		a, err := billing.ParseAccount(billing.AccountID(s))
		if err != nil {
			require.ErrorIs(t, err, billing.ErrInvalidAccount)
			return
		}
		require.Equal(t, billing.AccountID(s), a.ID)
		require.NotEmpty(t, a.Normal(), "a parsed account has a known kind")
		require.True(t, a.Currency.Valid())
		want := billing.PlatformAccount(a.Kind, a.Currency)
		if a.NonNegative() {
			require.NotEqual(t, uuid.Nil, a.User)
			want = billing.UserAccount(a.Kind, a.User, a.Currency)
		} else {
			require.Equal(t, uuid.Nil, a.User)
		}
		require.Equal(t, want, a.ID, "formatting the parts gives the id back")
	})
}

func TestValidateReportsEachBrokenRuleByField(t *testing.T) {
	t.Parallel()
	require.NoError(t, settlement().Validate())
	cash := billing.PlatformAccount(billing.PlatformCash, billing.USD)
	for _, tt := range []struct {
		description string
		change      func(*billing.Transaction)
		field       string
	}{
		{"no key", func(tx *billing.Transaction) { tx.Key = "" }, "key"},
		{"a key too long", func(tx *billing.Transaction) { tx.Key = strings.Repeat("k", billing.MaxKeyBytes+1) }, "key"},
		{"a key with a control byte", func(tx *billing.Transaction) { tx.Key = "topup:\n" }, "key"},
		{"a key beyond ASCII", func(tx *billing.Transaction) { tx.Key = "topup:é" }, "key"},
		{"no kind", func(tx *billing.Transaction) { tx.Kind = "" }, "kind"},
		{"an unknown kind", func(tx *billing.Transaction) { tx.Kind = "gift" }, "kind"},
		{"no entries", func(tx *billing.Transaction) { tx.Entries = nil }, "entries"},
		{"one entry", func(tx *billing.Transaction) { tx.Entries = tx.Entries[:1] }, "entries"},
		{"too many entries", func(tx *billing.Transaction) {
			tx.Entries = nil
			for range billing.MaxEntries/2 + 1 {
				tx.Entries = append(tx.Entries, billing.Entry{Account: cash, Side: billing.Debit, Amount: 1},
					billing.Entry{Account: cash, Side: billing.Credit, Amount: 1})
			}
		}, "entries"},
		{"a bad account", func(tx *billing.Transaction) { tx.Entries[1].Account = "held:someone:usd" }, "entries/1/account"},
		{"a bad side", func(tx *billing.Transaction) { tx.Entries[2].Side = "left" }, "entries/2/side"},
		{"a zero amount", func(tx *billing.Transaction) { tx.Entries[0].Amount = 0 }, "entries/0/amount"},
		{"a negative amount", func(tx *billing.Transaction) {
			tx.Entries[0].Amount, tx.Entries[0].Side = -1_000_000, billing.Credit
		}, "entries/0/amount"},
		{"unbalanced", func(tx *billing.Transaction) { tx.Entries[2].Amount++ }, "entries"},
		{"balanced overall but not per currency", func(tx *billing.Transaction) {
			tx.Entries[2].Account = billing.PlatformAccount(billing.PlatformRevenue, "eur")
		}, "entries"},
		{"amounts that overflow", func(tx *billing.Transaction) {
			tx.Entries = []billing.Entry{
				{Account: cash, Side: billing.Debit, Amount: 1 << 62}, {Account: cash, Side: billing.Debit, Amount: 1 << 62},
				{Account: cash, Side: billing.Credit, Amount: 1 << 62}, {Account: cash, Side: billing.Credit, Amount: 1 << 62},
			}
		}, "entries"},
		{"no effective time", func(tx *billing.Transaction) { tx.EffectiveAt = time.Time{} }, "effective_at"},
		{"a reversal that names nothing", func(tx *billing.Transaction) { tx.Kind = billing.TxReversal }, "reverses"},
		{"a settlement that reverses", func(tx *billing.Transaction) { tx.Reverses = uuid.New() }, "reverses"},
		{"a memo too long", func(tx *billing.Transaction) { tx.Memo = strings.Repeat("m", billing.MaxMemoBytes+1) }, "memo"},
		{"a memo not UTF-8", func(tx *billing.Transaction) { tx.Memo = "\xff" }, "memo"},
		{"too many refs", func(tx *billing.Transaction) {
			for i := range billing.MaxRefs {
				tx.Refs[strings.Repeat("r", i+1)] = "x"
			}
		}, "refs"},
		{"an empty ref key", func(tx *billing.Transaction) { tx.Refs[""] = "x" }, "refs"},
		{"a ref value too long", func(tx *billing.Transaction) { tx.Refs["day"] = strings.Repeat("v", billing.MaxRefBytes+1) }, "refs"},
		{"a ref key not UTF-8", func(tx *billing.Transaction) { tx.Refs["\xff"] = "x" }, "refs"},
	} {
		tx := settlement()
		tt.change(&tx)
		err := tx.Validate()
		require.ErrorIs(t, err, billing.ErrInvalidTransaction, tt.description)
		require.Contains(t, errs.As(err).Fields, tt.field, "%s: %v", tt.description, err)
	}

	// The limits themselves are allowed.
	tx := settlement()
	tx.Key, tx.Memo = strings.Repeat("k", billing.MaxKeyBytes), strings.Repeat("m", billing.MaxMemoBytes)
	tx.Refs = map[string]string{}
	for i := range billing.MaxRefs {
		tx.Refs[strings.Repeat("r", i+1)] = strings.Repeat("v", billing.MaxRefBytes)
	}
	require.NoError(t, tx.Validate())
	mixed := settlement()
	mixed.Entries = append(mixed.Entries,
		billing.Entry{Account: billing.PlatformAccount(billing.PlatformCash, "eur"), Side: billing.Debit, Amount: 5},
		billing.Entry{Account: billing.PlatformAccount(billing.PlatformRevenue, "eur"), Side: billing.Credit, Amount: 5})
	require.NoError(t, mixed.Validate(), "several currencies, each balanced")
}

func TestContentHashCoversTheContentOnly(t *testing.T) {
	t.Parallel()
	base := settlement().ContentHash()
	// The encoding is stored with every transaction: it must never change.
	// (This figure was computed apart, from the documented encoding.)
	require.Equal(t, "3792947828f8c634838ffa3023d1b3ba88d88c65a2d3acc14ff5d06c8e97b301", hex.EncodeToString(base[:]))

	same := settlement()
	same.ID, same.PostedAt = uuid.New(), time.Now()
	same.EffectiveAt = effective.Add(999 * time.Nanosecond).In(time.FixedZone("CET", 3600))
	same.Refs = map[string]string{"owner": owner.String(), "day": "2026-12-01"}
	require.Equal(t, base, same.ContentHash(), "ID, PostedAt, the time's zone and nanoseconds, the refs' order do not count")

	noRefs, emptyRefs := settlement(), settlement()
	noRefs.Refs, emptyRefs.Refs = nil, map[string]string{}
	require.Equal(t, noRefs.ContentHash(), emptyRefs.ContentHash())

	for _, tt := range []struct {
		description string
		change      func(*billing.Transaction)
	}{
		{"key", func(tx *billing.Transaction) { tx.Key += "x" }},
		{"kind", func(tx *billing.Transaction) { tx.Kind = billing.TxAdjustment }},
		{"effective time", func(tx *billing.Transaction) { tx.EffectiveAt = tx.EffectiveAt.Add(time.Microsecond) }},
		{"reverses", func(tx *billing.Transaction) { tx.Reverses = uuid.New() }},
		{"memo", func(tx *billing.Transaction) { tx.Memo = "" }},
		{"an amount", func(tx *billing.Transaction) { tx.Entries[1].Amount-- }},
		{"a side", func(tx *billing.Transaction) { tx.Entries[1].Side = billing.Debit }},
		{"an account", func(tx *billing.Transaction) {
			tx.Entries[1].Account = billing.UserAccount(billing.Held, advertiser, billing.USD)
		}},
		{"the entries' order", func(tx *billing.Transaction) { tx.Entries[1], tx.Entries[2] = tx.Entries[2], tx.Entries[1] }},
		{"an entry more", func(tx *billing.Transaction) { tx.Entries = append(tx.Entries, tx.Entries[0]) }},
		{"a ref's value", func(tx *billing.Transaction) { tx.Refs["day"] = "2026-12-02" }},
		{"a ref more", func(tx *billing.Transaction) { tx.Refs["x"] = "" }},
		{"a field's end moved", func(tx *billing.Transaction) {
			tx.Key, tx.Memo = tx.Key[:len(tx.Key)-1], tx.Key[len(tx.Key)-1:]+tx.Memo
		}},
		{"a ref's key and value swapped bytes", func(tx *billing.Transaction) {
			tx.Refs = map[string]string{"da": "y2026-12-01", "owner": owner.String()}
		}},
	} {
		tx := settlement()
		tt.change(&tx)
		require.NotEqual(t, base, tx.ContentHash(), tt.description)
	}
}

func TestReversalUndoesEveryEntry(t *testing.T) {
	t.Parallel()
	orig := settlement()
	orig.ID = uuid.New()
	at := effective.Add(48 * time.Hour)
	r := orig.Reversal("reverse:"+orig.Key, at)
	require.NoError(t, r.Validate())
	require.Equal(t, billing.TxReversal, r.Kind)
	require.Equal(t, orig.ID, r.Reverses)
	require.Equal(t, "reverse:"+orig.Key, r.Key)
	require.Equal(t, at, r.EffectiveAt)
	require.Equal(t, uuid.Nil, r.ID)
	require.Empty(t, r.Memo)
	require.Nil(t, r.Refs)
	require.Len(t, r.Entries, len(orig.Entries))
	for i, e := range r.Entries {
		require.Equal(t, orig.Entries[i].Account, e.Account)
		require.Equal(t, orig.Entries[i].Amount, e.Amount)
		require.NotEqual(t, orig.Entries[i].Side, e.Side)
	}
	require.Equal(t, billing.Debit, settlement().Entries[0].Side, "the original is not changed")

	require.True(t, r.Undoes(orig))
	require.True(t, r.Reversal("again", at).Undoes(r), "a reversal is undone by its own reversal")
	shuffled := r.Clone()
	shuffled.Entries[0], shuffled.Entries[2] = shuffled.Entries[2], shuffled.Entries[0]
	require.True(t, shuffled.Undoes(orig), "in any order")
	require.False(t, orig.Undoes(orig))
	short := r.Clone()
	short.Entries = short.Entries[:2]
	require.False(t, short.Undoes(orig))
	other := r.Clone()
	other.Entries[1].Amount--
	other.Entries[2].Amount++
	require.False(t, other.Undoes(orig))
	require.Equal(t, r.Entries[1].Amount, orig.Entries[1].Amount, "Clone shares no entries")
}

func TestCursorIsThePlaceInTheListing(t *testing.T) {
	t.Parallel()
	tx := settlement()
	tx.ID, tx.PostedAt = uuid.New(), time.Now()
	require.Equal(t, billing.TxCursor{PostedAt: tx.PostedAt, ID: tx.ID}, tx.Cursor())
}
