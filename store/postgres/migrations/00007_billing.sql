-- Billing: the double-entry ledger (accounts, transactions, entries) and
-- the records around it (top-ups, payouts, payees, holds, processor
-- events, finished operations).
--
-- Sensitive values (connected-account ids, payout destinations, event
-- payloads) are sealed by the store with auth/keyring before they reach
-- these tables: the bytea columns named *_sealed hold ciphertext only, and
-- payees are found by a blind index (an HMAC), never by the id itself.

-- +goose Up

-- A ledger account's balance, on its normal side, in micros. A user's
-- account (may_go_negative false) is one row, slot 0, and the CHECK keeps
-- it from going below zero: a posting that would take it there fails as a
-- whole, under any concurrency, since the row is locked by the update. A
-- platform account may go negative and is touched by almost every
-- posting, so its balance is spread over slots (rows 0 to 15): each
-- posting adds to one slot, parallel postings rarely wait for each other,
-- and the balance is the sum of the slots. debits and credits are every
-- entry's amount ever posted to the row (numeric: they only grow), which
-- Totals sums.
CREATE TABLE ledger_accounts (
    account_id      text        COLLATE "C" NOT NULL, -- ordered bytewise, as Go orders ids
    slot            smallint    NOT NULL,
    kind            text        NOT NULL,
    user_id         uuid,                  -- NULL: the platform's
    currency        text        NOT NULL,
    normal_side     text        NOT NULL,
    may_go_negative boolean     NOT NULL,
    balance         bigint      NOT NULL,
    debits          numeric     NOT NULL,
    credits         numeric     NOT NULL,
    updated_at      timestamptz NOT NULL,
    CONSTRAINT ledger_accounts_pkey PRIMARY KEY (account_id, slot),
    CONSTRAINT ledger_accounts_balance_check CHECK (may_go_negative OR balance >= 0),
    CONSTRAINT ledger_accounts_slot_check CHECK (slot BETWEEN 0 AND 15 AND (may_go_negative OR slot = 0)),
    CONSTRAINT ledger_accounts_side_check CHECK (normal_side IN ('debit', 'credit')),
    CONSTRAINT ledger_accounts_totals_check CHECK (debits >= 0 AND credits >= 0)
) WITH (fillfactor = 70); -- balances change on every posting: room for HOT updates
-- ledger_insufficient_funds fails the statement that calls it as the
-- balance check would: a posting calls it for an account that may not go
-- negative, has no row yet and would start below zero.
-- +goose StatementBegin
CREATE FUNCTION ledger_insufficient_funds(account text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger account % would go below zero', account
        USING ERRCODE = 'check_violation', CONSTRAINT = 'ledger_accounts_balance_check';
END;
$$;
-- +goose StatementEnd
-- AccountsAtLeast: the accounts of one kind and currency, in id order.
CREATE INDEX ledger_accounts_kind_idx ON ledger_accounts (kind, currency, account_id);

-- A posted transaction. The key is unique, and hash is what a second
-- posting under it must match (billing.Transaction.ContentHash). A
-- transaction is reversed at most once: reverses is unique.
CREATE TABLE ledger_transactions (
    id           uuid        PRIMARY KEY,
    key          text        NOT NULL,
    hash         bytea       NOT NULL,
    kind         text        NOT NULL,
    effective_at timestamptz NOT NULL,
    posted_at    timestamptz NOT NULL,
    reverses     uuid,
    memo         text        NOT NULL DEFAULT '',
    refs         jsonb,                    -- NULL: none
    CONSTRAINT ledger_transactions_key_key UNIQUE (key),
    CONSTRAINT ledger_transactions_hash_check CHECK (octet_length(hash) = 32),
    CONSTRAINT ledger_transactions_key_check CHECK (octet_length(key) BETWEEN 1 AND 200)
);
CREATE UNIQUE INDEX ledger_transactions_reverses_key ON ledger_transactions (reverses) WHERE reverses IS NOT NULL;
-- The listing of every transaction, newest first.
CREATE INDEX ledger_transactions_posted_idx ON ledger_transactions (posted_at, id);
-- EntryTotals: transactions of some kinds effective in a range.
CREATE INDEX ledger_transactions_kind_idx ON ledger_transactions (kind, effective_at);

-- One leg of a transaction, in the order given (seq). posted_at, the
-- account's kind and user repeat the transaction's and the account's, so
-- that listings by account or user page on one index.
CREATE TABLE ledger_entries (
    tx_id        uuid        NOT NULL,
    seq          smallint    NOT NULL,
    account_id   text        COLLATE "C" NOT NULL,
    account_kind text        NOT NULL,
    user_id      uuid,
    side         text        NOT NULL,
    amount       bigint      NOT NULL,
    posted_at    timestamptz NOT NULL,
    CONSTRAINT ledger_entries_pkey PRIMARY KEY (tx_id, seq),
    CONSTRAINT ledger_entries_tx_fkey FOREIGN KEY (tx_id) REFERENCES ledger_transactions (id),
    CONSTRAINT ledger_entries_side_check CHECK (side IN ('debit', 'credit')),
    CONSTRAINT ledger_entries_amount_check CHECK (amount > 0)
);
CREATE INDEX ledger_entries_account_idx ON ledger_entries (account_id, posted_at, tx_id);
CREATE INDEX ledger_entries_user_idx ON ledger_entries (user_id, posted_at, tx_id) WHERE user_id IS NOT NULL;

-- Records carry a version (optimistic concurrency: replaced only while
-- the stored version is the one read).
CREATE TABLE billing_topups (
    id            uuid        PRIMARY KEY,
    advertiser_id uuid        NOT NULL,
    client_key    text        NOT NULL,
    amount        bigint      NOT NULL,
    currency      text        NOT NULL,
    status        text        NOT NULL,
    payment_id    text        NOT NULL DEFAULT '',
    refunded      bigint      NOT NULL DEFAULT 0,
    disputed      bigint      NOT NULL DEFAULT 0,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    version       bigint      NOT NULL,
    CONSTRAINT billing_topups_client_key_key UNIQUE (advertiser_id, client_key),
    CONSTRAINT billing_topups_version_check CHECK (version >= 1)
);
CREATE UNIQUE INDEX billing_topups_payment_key ON billing_topups (payment_id) WHERE payment_id <> '';
-- TopUpsSince.
CREATE INDEX billing_topups_advertiser_idx ON billing_topups (advertiser_id, created_at);

CREATE TABLE billing_payouts (
    id                 uuid        PRIMARY KEY,
    owner_id           uuid        NOT NULL,
    amount             bigint      NOT NULL,
    currency           text        NOT NULL,
    status             text        NOT NULL,
    manual             boolean     NOT NULL,
    scheduled          boolean     NOT NULL,
    destination_sealed bytea,                  -- NULL: none yet
    transfer_id        text        NOT NULL DEFAULT '',
    attempts           integer     NOT NULL DEFAULT 0,
    last_error         text        NOT NULL DEFAULT '',
    created_at         timestamptz NOT NULL,
    updated_at         timestamptz NOT NULL,
    version            bigint      NOT NULL,
    CONSTRAINT billing_payouts_version_check CHECK (version >= 1)
);
-- Payouts by owner, or by status, newest (ids are UUIDv7) first.
CREATE INDEX billing_payouts_owner_idx ON billing_payouts (owner_id, id);
CREATE INDEX billing_payouts_status_idx ON billing_payouts (status, id);

CREATE TABLE billing_payees (
    owner_id          uuid        PRIMARY KEY,
    account_sealed    bytea       NOT NULL,
    account_index     bytea       NOT NULL,
    account_owner     uuid        NOT NULL,
    payouts_enabled   boolean     NOT NULL,
    transfers_enabled boolean     NOT NULL,
    details_submitted boolean     NOT NULL,
    requirements_due  text[]      NOT NULL DEFAULT '{}',
    disabled_reason   text        NOT NULL DEFAULT '',
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL,
    event_at          timestamptz,
    version           bigint      NOT NULL,
    CONSTRAINT billing_payees_account_index_key UNIQUE (account_index),
    CONSTRAINT billing_payees_version_check CHECK (version >= 1)
);

-- seq is the order holds were created in: Holds lists newest first.
CREATE TABLE billing_holds (
    id          uuid        PRIMARY KEY,
    seq         bigint      GENERATED ALWAYS AS IDENTITY,
    owner_id    uuid        NOT NULL,
    reason      text        NOT NULL,
    note        text        NOT NULL DEFAULT '',
    until       timestamptz,
    created_at  timestamptz NOT NULL,
    released_at timestamptz,
    released_by uuid,
    version     bigint      NOT NULL,
    CONSTRAINT billing_holds_version_check CHECK (version >= 1)
);
CREATE INDEX billing_holds_owner_idx ON billing_holds (owner_id, seq);

-- Processor events as received, in the order received (seq); the
-- connected account, the raw payload and what the verifier read of it are
-- sealed.
CREATE TABLE billing_events (
    id             text        PRIMARY KEY,
    seq            bigint      GENERATED ALWAYS AS IDENTITY,
    type           text        NOT NULL,
    account_sealed bytea,                  -- NULL: the platform's own event
    created        timestamptz,
    payload_sealed bytea       NOT NULL,
    event_sealed   bytea       NOT NULL,
    received_at    timestamptz,
    processed_at   timestamptz
);
CREATE INDEX billing_events_unprocessed_idx ON billing_events (seq) WHERE processed_at IS NULL;

-- Operations that finished (Write.Done), so that later runs skip them.
CREATE TABLE billing_done (
    key     text        PRIMARY KEY,
    done_at timestamptz NOT NULL
);

-- +goose Down
DROP TABLE billing_done;
DROP TABLE billing_events;
DROP TABLE billing_holds;
DROP TABLE billing_payees;
DROP TABLE billing_payouts;
DROP TABLE billing_topups;
DROP TABLE ledger_entries;
DROP TABLE ledger_transactions;
DROP TABLE ledger_accounts;
DROP FUNCTION ledger_insufficient_funds(text);
