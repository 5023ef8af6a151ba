-- Users and their ad spaces: the spine of adshare.

-- +goose Up
CREATE TABLE users (
    id         uuid        PRIMARY KEY,
    email      text        NOT NULL,
    role       text        NOT NULL,
    tier       text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT users_email_key UNIQUE (email),
    CONSTRAINT users_email_check CHECK (octet_length(email) BETWEEN 3 AND 254 AND position('@' IN email) > 1),
    CONSTRAINT users_role_check CHECK (role IN ('user', 'advertiser', 'moderator', 'admin')),
    CONSTRAINT users_tier_check CHECK (tier ~ '^[A-Za-z0-9_-]{1,64}$')
);

CREATE TABLE ad_spaces (
    owner_id           uuid        PRIMARY KEY,
    enabled            boolean     NOT NULL,
    refresh_seconds    integer     NOT NULL,
    max_ads_per_view   smallint    NOT NULL,
    keywords           text[]      NOT NULL DEFAULT '{}',
    blocked_categories text[]      NOT NULL DEFAULT '{}',
    version            bigint      NOT NULL DEFAULT 1,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT ad_spaces_owner_fkey FOREIGN KEY (owner_id) REFERENCES users (id) ON DELETE CASCADE,
    CONSTRAINT ad_spaces_refresh_check CHECK (refresh_seconds BETWEEN 30 AND 3600),
    CONSTRAINT ad_spaces_max_ads_check CHECK (max_ads_per_view BETWEEN 1 AND 10),
    CONSTRAINT ad_spaces_keywords_check CHECK (cardinality(keywords) <= 50 AND array_position(keywords, NULL) IS NULL),
    CONSTRAINT ad_spaces_blocked_categories_check CHECK (cardinality(blocked_categories) <= 50 AND array_position(blocked_categories, NULL) IS NULL),
    CONSTRAINT ad_spaces_version_check CHECK (version >= 1)
);

-- +goose Down
DROP TABLE ad_spaces;
DROP TABLE users;
