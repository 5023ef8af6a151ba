-- Personal data sealed at rest (auth/keyring, Config.Keyring): users'
-- emails and display names, the emails OIDC providers gave, and the client
-- addresses kept with sessions and audit events. The *_sealed columns hold
-- ciphertext only; users are found, and kept unique, by the email's blind
-- index (an HMAC), never by the address.
--
-- The keys are not in the database, so this migration cannot encrypt: it
-- adds the sealed columns next to the clear ones. Rows written before it
-- (or by a store without a keyring) keep the clear columns and stay
-- readable; the re-encryption job (DB.Reseal) seals them and clears the
-- clear columns, as it moves old ciphertext to a new key. A sealed row
-- holds no clear value: email is NULL, display_name and ip are ''.
--
-- keyring_reseal records each sealed table's progress through a
-- re-encryption run, so that a run resumes where the last batch committed.

-- +goose Up
ALTER TABLE users
    ALTER COLUMN email DROP NOT NULL,
    ADD COLUMN email_sealed        bytea,
    ADD COLUMN email_index         bytea,
    ADD COLUMN display_name_sealed bytea,
    ADD CONSTRAINT users_email_index_key UNIQUE (email_index),
    ADD CONSTRAINT users_email_sealed_check CHECK (
        (email_sealed IS NULL) = (email_index IS NULL)
        AND (email IS NULL) = (email_sealed IS NOT NULL)
        AND (display_name_sealed IS NULL OR display_name = ''));

ALTER TABLE identities
    ADD COLUMN email_sealed bytea,
    ADD CONSTRAINT identities_email_sealed_check CHECK (email_sealed IS NULL OR email = '');

ALTER TABLE sessions
    ADD COLUMN ip_sealed bytea,
    ADD CONSTRAINT sessions_ip_sealed_check CHECK (ip_sealed IS NULL OR ip = '');

ALTER TABLE audit_events
    ADD COLUMN ip_sealed bytea,
    ADD CONSTRAINT audit_events_ip_sealed_check CHECK (ip_sealed IS NULL OR ip = '');

-- The audit log stays append-only, but for one rewrite: the address may
-- leave the clear for ip_sealed, and ip_sealed may be sealed again under a
-- new key. Every other column must stay as it was, and ip can only be
-- emptied, never set.
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.ip = ''
       AND (to_jsonb(NEW) - 'ip' - 'ip_sealed') = (to_jsonb(OLD) - 'ip' - 'ip_sealed') THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'audit_events is append-only' USING ERRCODE = 'insufficient_privilege';
END;
$$;
-- +goose StatementEnd

CREATE TABLE keyring_reseal (
    target      text        PRIMARY KEY,  -- the sealed table
    sealing_key text        NOT NULL,     -- the key id the run seals with
    cursor      text[],                   -- the last primary key done; NULL: from the start
    resealed    bigint      NOT NULL DEFAULT 0,
    started_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    finished_at timestamptz
);

-- +goose Down
-- Sealed values cannot be opened here: going down with any stored would
-- lose them.
-- +goose StatementBegin
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM users WHERE email_sealed IS NOT NULL OR display_name_sealed IS NOT NULL)
       OR EXISTS (SELECT 1 FROM identities WHERE email_sealed IS NOT NULL)
       OR EXISTS (SELECT 1 FROM sessions WHERE ip_sealed IS NOT NULL)
       OR EXISTS (SELECT 1 FROM audit_events WHERE ip_sealed IS NOT NULL) THEN
        RAISE EXCEPTION 'sealed personal data is stored; it cannot be moved back into the clear by a migration';
    END IF;
END;
$$;
-- +goose StatementEnd
DROP TABLE keyring_reseal;
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only' USING ERRCODE = 'insufficient_privilege';
END;
$$;
-- +goose StatementEnd
ALTER TABLE audit_events DROP COLUMN ip_sealed;
ALTER TABLE sessions DROP COLUMN ip_sealed;
ALTER TABLE identities DROP COLUMN email_sealed;
ALTER TABLE users
    DROP COLUMN display_name_sealed,
    DROP COLUMN email_index,
    DROP COLUMN email_sealed,
    ALTER COLUMN email SET NOT NULL;
