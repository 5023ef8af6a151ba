-- Ad spaces learn formats, allow and block lists and a house fallback;
-- user-created ad content gets its table.
--
-- The checks are backstops for callers that skip the domain's validation:
-- adspace.Settings.Normalize and adspace.Rules enforce the real (and
-- configurable) limits, so the text limits here are deliberately generous.

-- +goose Up
ALTER TABLE ad_spaces
    ADD COLUMN formats             text[] NOT NULL DEFAULT '{banner}',
    ADD COLUMN allowed_categories  text[] NOT NULL DEFAULT '{}',
    ADD COLUMN blocked_keywords    text[] NOT NULL DEFAULT '{}',
    ADD COLUMN blocked_advertisers text[] NOT NULL DEFAULT '{}',
    ADD COLUMN house_fallback      text   NOT NULL DEFAULT 'none',
    ADD CONSTRAINT ad_spaces_formats_check CHECK (cardinality(formats) BETWEEN 1 AND 50 AND array_position(formats, NULL) IS NULL),
    ADD CONSTRAINT ad_spaces_allowed_categories_check CHECK (cardinality(allowed_categories) <= 50 AND array_position(allowed_categories, NULL) IS NULL),
    ADD CONSTRAINT ad_spaces_blocked_keywords_check CHECK (cardinality(blocked_keywords) <= 50 AND array_position(blocked_keywords, NULL) IS NULL),
    ADD CONSTRAINT ad_spaces_blocked_advertisers_check CHECK (cardinality(blocked_advertisers) <= 200 AND array_position(blocked_advertisers, NULL) IS NULL),
    ADD CONSTRAINT ad_spaces_house_fallback_check CHECK (house_fallback IN ('none', 'own'));

CREATE TABLE ad_contents (
    id                  uuid        PRIMARY KEY,
    advertiser_id       uuid        NOT NULL,
    status              text        NOT NULL,
    reject_reason       text        NOT NULL DEFAULT '',
    format              text        NOT NULL,
    title               text        NOT NULL,
    body                text        NOT NULL DEFAULT '',
    image_url           text        NOT NULL DEFAULT '',
    image_mime_type     text        NOT NULL DEFAULT '',
    image_width         integer     NOT NULL DEFAULT 0,
    image_height        integer     NOT NULL DEFAULT 0,
    image_bytes         bigint      NOT NULL DEFAULT 0,
    click_url           text        NOT NULL,
    call_to_action      text        NOT NULL DEFAULT '',
    categories          text[]      NOT NULL DEFAULT '{}',
    keywords            text[]      NOT NULL DEFAULT '{}',
    bid_model           text        NOT NULL,
    bid_micros          bigint      NOT NULL,
    daily_budget_micros bigint      NOT NULL DEFAULT 0,
    total_budget_micros bigint      NOT NULL,
    schedule_start      timestamptz,              -- NULL: from the start of time
    schedule_end        timestamptz,              -- NULL: until stopped
    fingerprint         text        NOT NULL,
    version             bigint      NOT NULL DEFAULT 1,
    created_at          timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL,
    submitted_at        timestamptz,              -- when it last entered pending_review
    reviewed_at         timestamptz,
    reviewed_by         uuid,                     -- no foreign key: the review outlives the moderator
    CONSTRAINT ad_contents_advertiser_fkey FOREIGN KEY (advertiser_id) REFERENCES users (id) ON DELETE CASCADE,
    CONSTRAINT ad_contents_status_check CHECK (status IN ('draft', 'pending_review', 'approved', 'rejected', 'paused', 'archived')),
    CONSTRAINT ad_contents_pending_submitted_check CHECK (status <> 'pending_review' OR submitted_at IS NOT NULL),
    CONSTRAINT ad_contents_reject_reason_check CHECK (char_length(reject_reason) <= 1000),
    CONSTRAINT ad_contents_format_check CHECK (char_length(format) BETWEEN 1 AND 64),
    CONSTRAINT ad_contents_text_check CHECK (
        char_length(title) BETWEEN 1 AND 1000
        AND char_length(body) <= 10000
        AND char_length(call_to_action) <= 1000),
    CONSTRAINT ad_contents_url_check CHECK (
        octet_length(click_url) BETWEEN 1 AND 16384
        AND octet_length(image_url) <= 16384),
    CONSTRAINT ad_contents_image_check CHECK (
        image_width >= 0 AND image_height >= 0 AND image_bytes >= 0
        AND char_length(image_mime_type) <= 255),
    CONSTRAINT ad_contents_categories_check CHECK (cardinality(categories) <= 50 AND array_position(categories, NULL) IS NULL),
    CONSTRAINT ad_contents_keywords_check CHECK (cardinality(keywords) <= 50 AND array_position(keywords, NULL) IS NULL),
    CONSTRAINT ad_contents_bid_model_check CHECK (bid_model IN ('cpm', 'cpc')),
    CONSTRAINT ad_contents_bid_check CHECK (bid_micros > 0),
    CONSTRAINT ad_contents_budget_check CHECK (
        daily_budget_micros >= 0 AND total_budget_micros >= 0
        AND daily_budget_micros <= total_budget_micros),
    CONSTRAINT ad_contents_schedule_check CHECK (
        schedule_start IS NULL OR schedule_end IS NULL OR schedule_end > schedule_start),
    CONSTRAINT ad_contents_fingerprint_check CHECK (fingerprint ~ '^[0-9a-f]{64}$'),
    CONSTRAINT ad_contents_version_check CHECK (version >= 1)
);

-- One advertiser cannot have two live (not archived) contents with one
-- fingerprint; archived content frees its fingerprint.
CREATE UNIQUE INDEX ad_contents_live_fingerprint_key ON ad_contents (advertiser_id, fingerprint)
    WHERE status <> 'archived';
-- An advertiser's contents, oldest first, paged by (created_at, id); also
-- serves the foreign key's cascade and CountLiveContent.
CREATE INDEX ad_contents_advertiser_idx ON ad_contents (advertiser_id, created_at, id);
-- The review queue, longest waiting first.
CREATE INDEX ad_contents_review_idx ON ad_contents (submitted_at, id)
    WHERE status = 'pending_review';
-- The local engine's inventory: approved content, filtered by schedule.
CREATE INDEX ad_contents_servable_idx ON ad_contents (schedule_start, schedule_end)
    WHERE status = 'approved';

-- +goose Down
DROP TABLE ad_contents;
ALTER TABLE ad_spaces
    DROP COLUMN formats,
    DROP COLUMN allowed_categories,
    DROP COLUMN blocked_keywords,
    DROP COLUMN blocked_advertisers,
    DROP COLUMN house_fallback;
