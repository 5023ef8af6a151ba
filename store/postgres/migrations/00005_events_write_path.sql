-- The events write path, made cheaper per event.
--
-- events_expect_all_new is the guard of WriteEvents' one-statement path:
-- that statement inserts a batch and adds its rollups as though every
-- event were new, and calls this with how many rows it inserted and how
-- many it sent. When some were stored before (a retry), the error aborts
-- the whole statement, so nothing of it stays, and WriteEvents takes its
-- transactional path instead, which folds only the new events.
--
-- events_impression_idx goes: ImpressionTimes now looks impressions up by
-- the primary key (the token's issue time and tracking id, which the
-- analytics service has from the token), so no insert maintains a second
-- index any more.

-- +goose Up
-- +goose StatementBegin
CREATE FUNCTION events_expect_all_new(inserted bigint, sent bigint) RETURNS bigint
LANGUAGE plpgsql AS $$
BEGIN
    IF inserted <> sent THEN
        RAISE EXCEPTION 'events: % of % events in the batch were stored before', sent - inserted, sent
            USING ERRCODE = 'AS001';
    END IF;
    RETURN inserted;
END;
$$;
-- +goose StatementEnd

DROP INDEX events_impression_idx;

-- +goose Down
CREATE INDEX events_impression_idx ON events (tracking_id) INCLUDE (occurred_at) WHERE type = 'impression';
DROP FUNCTION events_expect_all_new(bigint, bigint);
