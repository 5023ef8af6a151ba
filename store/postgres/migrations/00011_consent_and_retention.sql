-- Consent and retention.
--
-- consent_records is each user's append-only consent history (auth
-- ConsentStore): one row per change holding the whole state after it, the
-- policy version it was given under and where it came from. A trigger
-- refuses updates; rows go only with their user (erasure).
--
-- Retention (store/postgres DB.Purge, run by the retention job) deletes
-- audit events older than their window. The audit log stays append-only
-- for everything else: a DELETE passes the trigger only inside a
-- transaction that set adshare.retention to 'on' (SET LOCAL), which only
-- the retention job does.

-- +goose Up
CREATE TABLE consent_records (
    id             bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id        uuid        NOT NULL,
    policy_version text        NOT NULL,
    purposes       jsonb       NOT NULL,
    do_not_sell    boolean     NOT NULL,
    gpc            boolean     NOT NULL,
    source         text        NOT NULL,
    recorded_at    timestamptz NOT NULL,
    CONSTRAINT consent_records_user_fkey FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE,
    CONSTRAINT consent_records_purposes_check CHECK (jsonb_typeof(purposes) = 'object'),
    CONSTRAINT consent_records_gpc_check CHECK (NOT gpc OR do_not_sell),
    CONSTRAINT consent_records_text_check CHECK (char_length(policy_version) BETWEEN 1 AND 64 AND char_length(source) <= 32)
);
CREATE INDEX consent_records_user_idx ON consent_records (user_id, id);

-- +goose StatementBegin
CREATE FUNCTION consent_records_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'consent_records is append-only' USING ERRCODE = 'insufficient_privilege';
END;
$$;
-- +goose StatementEnd
CREATE TRIGGER consent_records_append_only BEFORE UPDATE ON consent_records
    FOR EACH ROW EXECUTE FUNCTION consent_records_append_only();

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

-- +goose Down
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
DROP TABLE consent_records;
DROP FUNCTION consent_records_append_only();
