-- Data subjects' rights (package privacy): exports (GDPR articles 15 and
-- 20) and erasures (article 17), each produced by a durable job.
--
-- An export's bundle is kept sealed (auth/keyring, when the store has a
-- keyring) until its one download or its expiry, then deleted. An
-- erasure names its user only while it is pending: once done, user_id is
-- NULL and the record says only that an erasure happened and under which
-- pseudonym what the law makes us keep (the ledger) now stands.
--
-- The audit log stays append-only, but for the erasure's rewrite (and,
-- as migration 00011 has it, the retention job's deletes): a
-- transaction that sets adshare.erasure to 'on' (SET LOCAL, inside the
-- erasure's own transaction; DB.EraseUser) may replace a user's id by
-- the pseudonym and clear the client address, user agent and details of
-- entries about that user.

-- +goose Up
CREATE TABLE privacy_exports (
    id            uuid        PRIMARY KEY,
    user_id       uuid        NOT NULL,
    requested_by  uuid        NOT NULL,
    status        text        NOT NULL,
    created_at    timestamptz NOT NULL,
    ready_at      timestamptz,
    expires_at    timestamptz,
    downloaded_at timestamptz,
    size          bigint      NOT NULL DEFAULT 0,
    bundle        bytea,                  -- NULL once downloaded or expired
    sealed        boolean     NOT NULL DEFAULT false, -- bundle is sealed (auth/keyring)
    CONSTRAINT privacy_exports_status_check CHECK (status IN ('pending', 'ready', 'downloaded', 'failed')),
    CONSTRAINT privacy_exports_ready_check CHECK (status <> 'ready' OR (ready_at IS NOT NULL AND expires_at IS NOT NULL))
);
-- One export pending per user: a second request gets the first.
CREATE UNIQUE INDEX privacy_exports_one_pending_key ON privacy_exports (user_id) WHERE status = 'pending';
CREATE INDEX privacy_exports_user_idx ON privacy_exports (user_id, id);

CREATE TABLE privacy_erasures (
    id          uuid        PRIMARY KEY,
    user_id     uuid,                     -- NULL once done
    pseudonym   uuid        NOT NULL,
    by_admin    boolean     NOT NULL,
    status      text        NOT NULL,
    steps       text[]      NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL,
    finished_at timestamptz,
    CONSTRAINT privacy_erasures_status_check CHECK (status IN ('pending', 'done')),
    CONSTRAINT privacy_erasures_user_check CHECK ((status = 'done') = (user_id IS NULL))
);
CREATE UNIQUE INDEX privacy_erasures_one_pending_key ON privacy_erasures (user_id) WHERE status = 'pending';

-- +goose StatementBegin
CREATE OR REPLACE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND current_setting('adshare.erasure', true) = 'on' THEN
        RETURN NEW;
    END IF;
    IF TG_OP = 'UPDATE' AND NEW.ip = ''
       AND (to_jsonb(NEW) - 'ip' - 'ip_sealed') = (to_jsonb(OLD) - 'ip' - 'ip_sealed') THEN
        RETURN NEW;
    END IF;
    IF TG_OP = 'DELETE' AND current_setting('adshare.retention', true) = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit_events is append-only' USING ERRCODE = 'insufficient_privilege';
END;
$$;
-- +goose StatementEnd

-- +goose Down
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.ip = ''
       AND (to_jsonb(NEW) - 'ip' - 'ip_sealed') = (to_jsonb(OLD) - 'ip' - 'ip_sealed') THEN
        RETURN NEW;
    END IF;
    IF TG_OP = 'DELETE' AND current_setting('adshare.retention', true) = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit_events is append-only' USING ERRCODE = 'insufficient_privilege';
END;
$$;
-- +goose StatementEnd
DROP TABLE privacy_erasures;
DROP TABLE privacy_exports;
