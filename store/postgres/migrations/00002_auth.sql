-- The user system: profiles, passwords, tier history, sessions with rotating
-- refresh tokens, linked identities and the append-only audit log.

-- +goose Up
ALTER TABLE users
    ADD COLUMN display_name  text        NOT NULL DEFAULT '',
    ADD COLUMN preferences   jsonb       NOT NULL DEFAULT '{}',
    ADD COLUMN settings      jsonb       NOT NULL DEFAULT '{}',
    ADD COLUMN password_hash text,
    ADD COLUMN updated_at    timestamptz NOT NULL DEFAULT now(),
    ADD CONSTRAINT users_display_name_check CHECK (char_length(display_name) <= 64),
    ADD CONSTRAINT users_password_hash_check CHECK (password_hash IS NULL OR password_hash LIKE '$argon2id$%'),
    ADD CONSTRAINT users_preferences_check CHECK (jsonb_typeof(preferences) = 'object'),
    ADD CONSTRAINT users_settings_check CHECK (jsonb_typeof(settings) = 'object');

-- Tier history: earnings use the tier in force when they were earned.
CREATE TABLE user_tier_changes (
    id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id      uuid        NOT NULL,
    tier         text        NOT NULL,
    effective_at timestamptz NOT NULL,
    changed_by   uuid,
    CONSTRAINT user_tier_changes_user_fkey FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE,
    CONSTRAINT user_tier_changes_tier_check CHECK (tier ~ '^[A-Za-z0-9_-]{1,64}$')
);
CREATE INDEX user_tier_changes_user_idx ON user_tier_changes (user_id, effective_at DESC, id DESC);

CREATE TABLE sessions (
    id                  uuid        PRIMARY KEY,
    user_id             uuid        NOT NULL,
    method              text        NOT NULL,
    user_agent          text        NOT NULL DEFAULT '',
    ip                  text        NOT NULL DEFAULT '',
    created_at          timestamptz NOT NULL,
    last_used_at        timestamptz NOT NULL,
    idle_expires_at     timestamptz NOT NULL,
    absolute_expires_at timestamptz NOT NULL,
    generation          bigint      NOT NULL DEFAULT 1,
    revoked_at          timestamptz,
    revoke_reason       text        NOT NULL DEFAULT '',
    CONSTRAINT sessions_user_fkey FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE,
    CONSTRAINT sessions_expiry_check CHECK (idle_expires_at <= absolute_expires_at),
    CONSTRAINT sessions_generation_check CHECK (generation >= 1),
    CONSTRAINT sessions_user_agent_check CHECK (char_length(user_agent) <= 512 AND char_length(ip) <= 64)
) WITH (fillfactor = 80); -- room for HOT updates: every refresh rewrites the row
-- Only unindexed columns change on refresh, so those updates stay HOT.
CREATE INDEX sessions_live_by_user_idx ON sessions (user_id) WHERE revoked_at IS NULL;

-- Refresh tokens are kept only as SHA-256 hashes.
CREATE TABLE refresh_tokens (
    hash       bytea       PRIMARY KEY,
    session_id uuid        NOT NULL,
    generation bigint      NOT NULL,
    created_at timestamptz NOT NULL,
    used_at    timestamptz,
    CONSTRAINT refresh_tokens_session_fkey FOREIGN KEY (session_id) REFERENCES sessions (id) ON DELETE CASCADE,
    CONSTRAINT refresh_tokens_generation_key UNIQUE (session_id, generation),
    CONSTRAINT refresh_tokens_hash_check CHECK (octet_length(hash) = 32)
) WITH (fillfactor = 90);

-- Identities at OpenID Connect providers, keyed by issuer and subject.
CREATE TABLE identities (
    issuer     text        NOT NULL,
    subject    text        NOT NULL,
    user_id    uuid        NOT NULL,
    provider   text        NOT NULL,
    email      text        NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL,
    CONSTRAINT identities_pkey PRIMARY KEY (issuer, subject),
    CONSTRAINT identities_user_fkey FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
);
CREATE INDEX identities_user_idx ON identities (user_id);

-- The audit log is append-only: a trigger refuses every UPDATE and DELETE.
-- Events outlive their actors, so actor and target are plain values.
CREATE TABLE audit_events (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          timestamptz NOT NULL,
    actor_id    uuid,
    action      text        NOT NULL,
    target_type text        NOT NULL DEFAULT '',
    target_id   text        NOT NULL DEFAULT '',
    ip          text        NOT NULL DEFAULT '',
    user_agent  text        NOT NULL DEFAULT '',
    outcome     text        NOT NULL,
    reason      text        NOT NULL DEFAULT '',
    details     jsonb       NOT NULL DEFAULT '{}',
    CONSTRAINT audit_events_outcome_check CHECK (outcome IN ('success', 'failure', 'denied'))
);
CREATE INDEX audit_events_actor_idx ON audit_events (actor_id, id DESC);
CREATE INDEX audit_events_target_idx ON audit_events (target_id, id DESC);
CREATE INDEX audit_events_action_idx ON audit_events (action, id DESC);
CREATE INDEX audit_events_at_idx ON audit_events (at);

-- +goose StatementBegin
CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only' USING ERRCODE = 'insufficient_privilege';
END;
$$;
-- +goose StatementEnd
CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only();

-- +goose Down
DROP TABLE audit_events;
DROP FUNCTION audit_events_append_only();
DROP TABLE identities;
DROP TABLE refresh_tokens;
DROP TABLE sessions;
DROP TABLE user_tier_changes;
ALTER TABLE users
    DROP COLUMN display_name,
    DROP COLUMN preferences,
    DROP COLUMN settings,
    DROP COLUMN password_hash,
    DROP COLUMN updated_at;
