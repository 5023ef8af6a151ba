package billing

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/adshare/adshare/internal/errs"
)

// AccountKind is what an account holds. It fixes the account's normal
// side and whether its balance may go below zero.
type AccountKind string

// The kinds of account; see the package documentation for what each holds.
const (
	Budget           AccountKind = "budget"     // an advertiser's prepaid budget
	Held             AccountKind = "held"       // an owner's earnings in the hold window
	Available        AccountKind = "available"  // an owner's earnings that may be paid out
	InTransit        AccountKind = "in_transit" // an owner's payout on its way
	Owed             AccountKind = "owed"       // what an owner owes back (clawbacks)
	PlatformRevenue  AccountKind = "platform:revenue"
	PlatformCash     AccountKind = "platform:cash"
	PlatformKevel    AccountKind = "platform:kevel"
	PlatformFees     AccountKind = "platform:fees"
	PlatformRefunds  AccountKind = "platform:refunds"
	PlatformDisputes AccountKind = "platform:disputes"
	PlatformUnfunded AccountKind = "platform:unfunded"
	// PlatformSettlement is what advertisers owe for a day being settled:
	// owners' settlements debit it, advertisers' charges credit it back to
	// zero.
	PlatformSettlement AccountKind = "platform:settlement"
)

// Side is a side of an entry or an account's normal side.
type Side string

// Sides.
const (
	Debit  Side = "debit"
	Credit Side = "credit"
)

// opposite is the other side.
func (s Side) opposite() Side {
	if s == Debit {
		return Credit
	}
	return Debit
}

// kindRule is what an account's kind fixes.
type kindRule struct {
	normal Side
	user   bool // a user's account: never negative
}

// kindRules are the kinds of account; see the table in the package
// documentation.
var kindRules = map[AccountKind]kindRule{
	Budget:             {Credit, true},
	Held:               {Credit, true},
	Available:          {Credit, true},
	InTransit:          {Credit, true},
	Owed:               {Debit, true},
	PlatformRevenue:    {Credit, false},
	PlatformCash:       {Debit, false},
	PlatformKevel:      {Debit, false},
	PlatformFees:       {Debit, false},
	PlatformRefunds:    {Debit, false},
	PlatformDisputes:   {Debit, false},
	PlatformUnfunded:   {Debit, false},
	PlatformSettlement: {Debit, false},
}

// AccountID names an account: "<kind>:<user>:<currency>" for a user's
// account ("budget:0190…:usd"), "<kind>:<currency>" for the platform's
// ("platform:revenue:usd"). Build one with UserAccount or PlatformAccount
// and read it with ParseAccount.
type AccountID string

// Account is what an AccountID says, parsed.
type Account struct {
	ID       AccountID
	Kind     AccountKind
	User     uuid.UUID // uuid.Nil for the platform's accounts
	Currency Currency
}

// Normal is the side on which the account grows; the empty Side for an
// account of no known kind.
func (a Account) Normal() Side { return kindRules[a.Kind].normal }

// NonNegative reports whether the account's balance may never go below
// zero: every user account. A posting that would take one below zero fails
// with ErrInsufficientFunds.
func (a Account) NonNegative() bool { return kindRules[a.Kind].user }

// Signed is an entry's amount as it moves the account's balance: positive
// on the account's normal side, negative on the other.
func (a Account) Signed(e Entry) int64 {
	if e.Side == a.Normal() {
		return e.Amount
	}
	return -e.Amount
}

// UserAccount is the id of user's account of kind k (Budget, Held,
// Available, InTransit or Owed) in currency c. With another kind, the id
// names no account: ParseAccount and Validate refuse it.
func UserAccount(k AccountKind, user uuid.UUID, c Currency) AccountID {
	return AccountID(string(k) + ":" + user.String() + ":" + string(c))
}

// PlatformAccount is the id of the platform's account of kind k in c.
func PlatformAccount(k AccountKind, c Currency) AccountID {
	return AccountID(string(k) + ":" + string(c))
}

// maxAccountID is longer than any account id ("in_transit:" and a UUID and
// a currency make 51 bytes).
const maxAccountID = 64

// ParseAccount reads an account id; ErrInvalidAccount for anything else.
// Only the canonical spelling parses (a known kind, a lower-case hyphenated
// UUID other than uuid.Nil, a supported currency), so that one account has
// one id: ParseAccount(id) succeeds exactly when UserAccount or
// PlatformAccount gives back id from its parts.
func ParseAccount(id AccountID) (Account, error) {
	s := string(id)
	if len(s) > maxAccountID {
		return Account{}, ErrInvalidAccount
	}
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return Account{}, ErrInvalidAccount
	}
	head, c := s[:i], Currency(s[i+1:])
	if !c.Valid() {
		return Account{}, ErrInvalidAccount
	}
	if rule, ok := kindRules[AccountKind(head)]; ok && !rule.user {
		return Account{ID: id, Kind: AccountKind(head), Currency: c}, nil
	}
	kind, user, ok := strings.Cut(head, ":")
	if rule, known := kindRules[AccountKind(kind)]; !ok || !known || !rule.user {
		return Account{}, ErrInvalidAccount
	}
	u, err := uuid.Parse(user)
	if err != nil || u == uuid.Nil || u.String() != user {
		return Account{}, ErrInvalidAccount
	}
	return Account{ID: id, Kind: AccountKind(kind), User: u, Currency: c}, nil
}

// Entry is one leg of a transaction: Amount micros (positive) on Side of
// Account.
type Entry struct {
	Account AccountID
	Side    Side
	Amount  int64
}

// TxKind says what a transaction records.
type TxKind string

// The kinds of transaction (see the flows in the package documentation).
const (
	TxTopUp      TxKind = "topup"
	TxSettlement TxKind = "settlement"
	TxRelease    TxKind = "release"
	TxPayout     TxKind = "payout"      // reserve: available → in_transit
	TxPayoutPaid TxKind = "payout_paid" // in_transit → platform:cash
	TxPayoutVoid TxKind = "payout_void" // in_transit → available
	TxRefund     TxKind = "refund"
	TxDispute    TxKind = "dispute"
	TxReversal   TxKind = "reversal"
	TxAdjustment TxKind = "adjustment"
)

// txKinds are the valid TxKinds.
var txKinds = []TxKind{TxTopUp, TxSettlement, TxRelease, TxPayout, TxPayoutPaid, TxPayoutVoid,
	TxRefund, TxDispute, TxReversal, TxAdjustment}

// Limits of a Transaction, checked by Validate.
const (
	// MaxKeyBytes is the longest idempotency key.
	MaxKeyBytes = 200
	// MaxEntries is the most entries in one transaction.
	MaxEntries = 64
	// MaxMemoBytes is the longest memo.
	MaxMemoBytes = 200
	// MaxRefs is the most refs of one transaction, and MaxRefBytes the
	// longest key or value of one.
	MaxRefs     = 8
	MaxRefBytes = 100
)

// Transaction is a balanced set of entries posted at once. Its Key is
// unique across the ledger: posting a key again is idempotent.
type Transaction struct {
	// ID is set by Post (a UUIDv7) unless given.
	ID uuid.UUID
	// Key is the idempotency key, such as "topup:pi_123" or
	// "settle:<owner>:2026-12-01": at most 200 bytes of printable ASCII.
	Key  string
	Kind TxKind
	// Entries balance per currency: Σ debits = Σ credits. At most 64.
	Entries []Entry
	// EffectiveAt is when the money moved in business terms (the day
	// settled, the payment's time); PostedAt is set by the store.
	EffectiveAt time.Time
	PostedAt    time.Time
	// Reverses names the transaction this one reverses, if any.
	Reverses uuid.UUID
	// Memo is a short human note (at most 200 bytes); Refs link the
	// transaction to what caused it ("payment_intent": "pi_…",
	// "payout": "<id>"), at most 8 pairs of at most 100 bytes each.
	Memo string
	Refs map[string]string
}

// Validate checks a transaction before it is posted: a key, a kind, 1 to
// 64 entries on valid accounts with positive amounts, balanced per
// currency, an EffectiveAt, bounded memo and refs. It returns
// ErrInvalidTransaction with field messages.
func (t Transaction) Validate() error {
	var f errs.Fields
	f.Check(t.Key != "" && len(t.Key) <= MaxKeyBytes && printableASCII(t.Key), "key",
		fmt.Sprintf("is required: 1 to %d bytes of printable ASCII", MaxKeyBytes))
	f.Check(slices.Contains(txKinds, t.Kind), "kind", "is not a kind of ledger transaction")
	switch {
	case len(t.Entries) == 0:
		f.Add("entries", "at least one debit and one credit are required")
	case len(t.Entries) > MaxEntries:
		f.Add("entries", fmt.Sprintf("at most %d entries", MaxEntries))
	}
	sums := map[Currency]*DebitsCredits{}
	for i, e := range t.Entries {
		at := fmt.Sprintf("entries/%d/", i)
		a, err := ParseAccount(e.Account)
		f.Check(err == nil, at+"account", "is not a ledger account")
		f.Check(e.Side == Debit || e.Side == Credit, at+"side", "must be debit or credit")
		f.Check(e.Amount > 0, at+"amount", "must be a positive number of micros")
		if err != nil || e.Amount <= 0 {
			continue
		}
		dc := sums[a.Currency]
		if dc == nil {
			dc = &DebitsCredits{}
			sums[a.Currency] = dc
		}
		sum := &dc.Credits
		if e.Side == Debit {
			sum = &dc.Debits
		}
		if *sum > maxInt64-e.Amount {
			f.Add("entries", "the amounts are too large to add up")
			continue
		}
		*sum += e.Amount
	}
	for _, c := range slices.Sorted(maps.Keys(sums)) {
		if dc := sums[c]; dc.Debits != dc.Credits {
			f.Add("entries", fmt.Sprintf("do not balance in %s: %d micros of debits, %d of credits", c, dc.Debits, dc.Credits))
		}
	}
	f.Check(!t.EffectiveAt.IsZero(), "effective_at", "is required")
	switch {
	case t.Kind == TxReversal && t.Reverses == uuid.Nil:
		f.Add("reverses", "a reversal names the transaction it reverses")
	case t.Kind != TxReversal && t.Reverses != uuid.Nil:
		f.Add("reverses", "only a reversal reverses a transaction")
	}
	f.Check(len(t.Memo) <= MaxMemoBytes && utf8.ValidString(t.Memo), "memo",
		fmt.Sprintf("at most %d bytes of UTF-8", MaxMemoBytes))
	f.Check(len(t.Refs) <= MaxRefs, "refs", fmt.Sprintf("at most %d refs", MaxRefs))
	for k, v := range t.Refs {
		f.Check(k != "" && len(k) <= MaxRefBytes && len(v) <= MaxRefBytes && utf8.ValidString(k) && utf8.ValidString(v),
			"refs", fmt.Sprintf("keys of 1 to %d bytes and values of at most %d bytes, UTF-8", MaxRefBytes, MaxRefBytes))
	}
	return f.Err(ErrInvalidTransaction)
}

// printableASCII reports whether s holds only bytes from space to tilde.
func printableASCII(s string) bool {
	for i := range len(s) {
		if s[i] < ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// ContentHash is the SHA-256 of a canonical encoding of everything but ID
// and PostedAt (entries in the order given; refs sorted): what a second
// posting of the same key must match.
//
// The encoding, version 1, is the concatenation of: the string
// "adshare.ledger.tx.v1", Key, Kind, EffectiveAt as the big-endian int64
// count of microseconds since the Unix epoch (stores keep microseconds, so
// a transaction read back hashes as it was posted), the 16 bytes of
// Reverses, Memo, the number of entries and then each entry's Account, Side
// and Amount (big-endian int64), the number of refs and then each ref's key
// and value in the order of the keys' bytes. A string is its length as an
// unsigned varint followed by its bytes, a number is an unsigned varint:
// every field is delimited, so two different transactions never share an
// encoding. A nil and an empty Refs encode alike. Changing the encoding
// changes every stored hash: add a version instead.
func (t Transaction) ContentHash() [32]byte {
	b := make([]byte, 0, 128+len(t.Key)+len(t.Memo)+len(t.Entries)*72)
	b = appendString(b, "adshare.ledger.tx.v1")
	b = appendString(b, t.Key)
	b = appendString(b, string(t.Kind))
	b = binary.BigEndian.AppendUint64(b, uint64(t.EffectiveAt.UnixMicro()))
	b = append(b, t.Reverses[:]...)
	b = appendString(b, t.Memo)
	b = binary.AppendUvarint(b, uint64(len(t.Entries)))
	for _, e := range t.Entries {
		b = appendString(b, string(e.Account))
		b = appendString(b, string(e.Side))
		b = binary.BigEndian.AppendUint64(b, uint64(e.Amount))
	}
	keys := slices.Sorted(maps.Keys(t.Refs))
	b = binary.AppendUvarint(b, uint64(len(keys)))
	for _, k := range keys {
		b = appendString(b, k)
		b = appendString(b, t.Refs[k])
	}
	return sha256.Sum256(b)
}

// appendString appends s, delimited by its length.
func appendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

// Reversal returns the transaction that undoes t: every entry on the
// other side, kind TxReversal, Reverses t.ID, under key, effective at. It
// carries no memo or refs: the caller says why.
func (t Transaction) Reversal(key string, at time.Time) Transaction {
	entries := make([]Entry, len(t.Entries))
	for i, e := range t.Entries {
		entries[i] = Entry{Account: e.Account, Side: e.Side.opposite(), Amount: e.Amount}
	}
	return Transaction{Key: key, Kind: TxReversal, Entries: entries, EffectiveAt: at, Reverses: t.ID}
}

// Undoes reports whether t's entries are orig's on the other side, in any
// order: what a reversal of orig must post.
func (t Transaction) Undoes(orig Transaction) bool {
	if len(t.Entries) != len(orig.Entries) {
		return false
	}
	counts := make(map[Entry]int, len(orig.Entries))
	for _, e := range orig.Entries {
		counts[Entry{Account: e.Account, Side: e.Side.opposite(), Amount: e.Amount}]++
	}
	for _, e := range t.Entries {
		if counts[e] == 0 {
			return false
		}
		counts[e]--
	}
	return true
}

// Clone returns a copy of t that shares no slice or map with it.
func (t Transaction) Clone() Transaction {
	t.Entries = slices.Clone(t.Entries)
	t.Refs = maps.Clone(t.Refs)
	return t
}

// Balance is an account's balance on its normal side, in micros, and when
// it last changed.
type Balance struct {
	Account   AccountID
	Micros    int64
	UpdatedAt time.Time
}

// TxFilter selects transactions for a listing, newest first.
type TxFilter struct {
	// User, when set, keeps transactions with an entry on one of the
	// user's accounts.
	User uuid.UUID
	// Account, when set, keeps transactions with an entry on it.
	Account AccountID
	// Before pages: transactions posted before this one (zero: from the
	// newest).
	Before TxCursor
	// Limit caps the page: 1 to 500 (0: 50).
	Limit int
}

// TxCursor is a place in the listing: after the transaction posted at
// PostedAt with ID. The zero TxCursor is the start of the listing.
type TxCursor struct {
	PostedAt time.Time
	ID       uuid.UUID
}

// Cursor is t's place in a listing: a TxFilter whose Before it is lists
// the transactions posted before t.
func (t Transaction) Cursor() TxCursor { return TxCursor{PostedAt: t.PostedAt, ID: t.ID} }

// Ledger is where transactions are posted. Implementations: store/memory
// and store/postgres; store/storetest.RunLedger is the contract.
type Ledger interface {
	// Post records t atomically: every entry and the balances it moves, or
	// nothing. It returns the transaction as stored (ID and PostedAt set,
	// EffectiveAt in UTC to the microsecond, empty Refs nil) and whether
	// this call posted it. A key posted before with the same ContentHash
	// returns that first posting (posted false) and changes nothing; with
	// another hash, ErrKeyConflict (also when t.ID is given and is another
	// key's transaction). ErrInvalidTransaction when t does not Validate,
	// or when a reversal's entries do not undo those of the transaction it
	// reverses; ErrTransactionNotFound when that transaction does not
	// exist, ErrAlreadyReversed when another transaction reversed it;
	// ErrInsufficientFunds when the entries would take a NonNegative
	// account below zero (what the account holds after the whole
	// transaction counts, not entry by entry). Nothing is posted on any
	// error. Safe under any concurrency, across instances; a caller that
	// gives up (ctx done) may not know whether its posting happened: it
	// posts the same transaction again, which the key makes safe.
	Post(ctx context.Context, t Transaction) (stored Transaction, posted bool, err error)

	// Balances returns the balances of the accounts; an account without
	// entries has a zero balance (and a zero UpdatedAt). ErrInvalidAccount
	// when an id names no account.
	Balances(ctx context.Context, ids []AccountID) (map[AccountID]Balance, error)

	// TransactionByKey returns the transaction posted under key, or
	// ErrTransactionNotFound.
	TransactionByKey(ctx context.Context, key string) (Transaction, error)

	// Transactions lists transactions, newest first (by PostedAt, then
	// ID), by f: with both User and Account set, those with entries on
	// both. A Limit beyond 500 lists 500, one below 1 lists 50. The last
	// transaction of a page, as a TxCursor, is the next page's Before.
	// ErrInvalidAccount when f.Account names no account.
	Transactions(ctx context.Context, f TxFilter) ([]Transaction, error)

	// Totals returns, per currency, the sums of all debits and all
	// credits ever posted: equal, always (a check for reconciliation and
	// tests).
	Totals(ctx context.Context) (map[Currency]DebitsCredits, error)
}

// DebitsCredits are two sums of entries, in micros.
type DebitsCredits struct {
	Debits, Credits int64
}
