package kevel

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/adshare/adshare/decision"
	"github.com/adshare/adshare/internal/errs"
)

// ErrAPIKeyRequired is returned by the UserDB calls the spec protects
// with X-Adzerk-ApiKey (SetCustom, SetConsent, Forget) when Config.APIKey
// is empty: a configuration mistake, so of kind Internal.
var ErrAPIKeyRequired = errs.New(errs.Internal, "kevel_api_key_required",
	"this UserDB call needs Config.APIKey (Kevel protects it with X-Adzerk-ApiKey)")

// internalUserFields are UserDB bookkeeping fields that Read drops (the
// official JS and Python SDKs strip them too).
var internalUserFields = []string{
	"cookieMonster", "dirtyCookies", "isNew", "adViewTimes", "advertiserViewTimes",
	"flightViewTimes", "siteViewTimes", "campaignViewTimes", "pendingConversions", "campaignConversions",
}

// UserRecord is a UserDB record, as Read returns it.
type UserRecord struct {
	// Key is the user key.
	Key string `json:"key"`
	// Interests added to the user.
	Interests []string `json:"interests,omitempty"`
	// BlockedItems, PartnerUserIDs and RetargetingSegments are as Kevel
	// sends them (numbers as json.Number).
	BlockedItems        JSONObject `json:"blockedItems,omitempty"`
	PartnerUserIDs      JSONObject `json:"partnerUserIds,omitempty"`
	RetargetingSegments JSONObject `json:"retargetingSegments,omitempty"`
	// Custom holds the custom properties (SetCustom).
	Custom JSONObject `json:"custom,omitempty"`
	// Consent is the stored GDPR consent (SetConsent).
	Consent *UserConsent `json:"consent,omitempty"`
	// OptOut is true after OptOut.
	OptOut bool `json:"optOut,omitempty"`
	// IP is the stored IP override.
	IP string `json:"ip,omitempty"`
	// Extra holds other fields, internal bookkeeping removed.
	Extra map[string]json.RawMessage `json:"-"`
}

// UserConsent is a UserDB record's consent.
type UserConsent struct {
	GDPR bool `json:"gdpr"`
}

type plainUserRecord UserRecord

// UnmarshalJSON implements json.Unmarshaler.
func (r *UserRecord) UnmarshalJSON(b []byte) error {
	return unmarshalExtra(b, (*plainUserRecord)(r), &r.Extra)
}

// MarshalJSON implements json.Marshaler.
func (r UserRecord) MarshalJSON() ([]byte, error) { return marshalExtra(plainUserRecord(r), r.Extra) }

// UserDB reads and writes Kevel UserDB records through the Client's host
// (the CNAME when BaseURL is one, as Kevel requires), API key, transport
// and metrics. User keys are never logged. Errors are the decision
// package's (translated like Decide's): ErrInvalidRequest for an empty
// user key or a 400, ErrTimeout, ErrRateLimited, ErrUnavailable (401 and
// 403 included), plus ErrAPIKeyRequired. Calls are not rate limited nor
// behind the breaker, and re-sent only after dial errors.
type UserDB struct{ c *Client }

// UserDB returns the client's UserDB calls.
func (c *Client) UserDB() *UserDB { return &UserDB{c: c} }

// Read returns the user's record without Kevel's internal fields. An
// unknown key gives an empty record (Kevel's behaviour), not an error.
func (u *UserDB) Read(ctx context.Context, userKey string) (UserRecord, error) {
	var rec UserRecord
	body, err := u.call(ctx, "read", http.MethodGet, "/read", userKey, nil, false)
	if err != nil {
		return rec, err
	}
	if err := json.Unmarshal(body, &rec); err != nil {
		return UserRecord{}, u.fail(ctx, "read", decision.ErrUnavailable.WithCause(errors.Join(errMalformed, err)))
	}
	for _, k := range internalUserFields {
		delete(rec.Extra, k)
	}
	if len(rec.Extra) == 0 {
		rec.Extra = nil
	}
	return rec, nil
}

// SetCustom stores props as the user's custom properties (targetable per
// flight or ad). Kevel does not document whether it replaces or merges
// the previous ones. Needs Config.APIKey.
func (u *UserDB) SetCustom(ctx context.Context, userKey string, props map[string]any) error {
	body, err := json.Marshal(props)
	if err != nil {
		return decision.ErrInvalidRequest.WithFields(map[string]string{"properties": "must be JSON-encodable"})
	}
	if props == nil {
		body = []byte("{}")
	}
	_, err = u.call(ctx, "custom", http.MethodPost, "/custom", userKey, body, true)
	return err
}

// OptOut opts the user out of tracking.
func (u *UserDB) OptOut(ctx context.Context, userKey string) error {
	_, err := u.call(ctx, "optout", http.MethodGet, "/optout/i.gif", userKey, nil, false)
	return err
}

// SetConsent records the user's GDPR consent. Needs Config.APIKey.
func (u *UserDB) SetConsent(ctx context.Context, userKey string, gdpr bool) error {
	if userKey == "" {
		return u.fail(ctx, "consent", errEmptyUserKey())
	}
	body, _ := json.Marshal(struct {
		UserKey string      `json:"userKey"`
		Consent UserConsent `json:"consent"`
	}{userKey, UserConsent{GDPR: gdpr}})
	_, err := u.call(ctx, "consent", http.MethodPost, "/consent", "", body, true)
	return err
}

// Forget erases the user's record (GDPR erasure). Needs Config.APIKey.
func (u *UserDB) Forget(ctx context.Context, userKey string) error {
	_, err := u.call(ctx, "forget", http.MethodDelete, "", userKey, nil, true)
	return err
}

func errEmptyUserKey() error {
	return decision.ErrInvalidRequest.WithFields(map[string]string{"user_key": "is required"})
}

// call does one UserDB call: path under /udb/{networkId}, userKey as a
// query parameter when not empty, body as JSON when not nil.
func (u *UserDB) call(ctx context.Context, op, method, path, userKey string, body []byte, needsKey bool) ([]byte, error) {
	c := u.c
	if needsKey && c.cfg.APIKey == "" {
		return nil, u.fail(ctx, op, ErrAPIKeyRequired)
	}
	if userKey == "" && op != "consent" {
		return nil, u.fail(ctx, op, errEmptyUserKey())
	}
	target := c.cfg.BaseURL + "/udb/" + strconv.FormatInt(c.cfg.NetworkID, 10) + path
	if userKey != "" {
		target += "?" + url.Values{"userKey": {userKey}}.Encode()
	}
	h := make(http.Header, 4)
	h.Set("User-Agent", c.cfg.UserAgent)
	if body != nil {
		h.Set("Content-Type", "application/json")
	}
	if c.cfg.APIKey != "" {
		h.Set(apiKeyHeader, string(c.cfg.APIKey))
	}
	cctx, cancel := context.WithTimeout(ctx, c.cfg.UserDBTimeout)
	defer cancel()
	start := time.Now()
	status, header, respBody, err := c.send(cctx, method, target, h, body)
	o := outcome{err: err, status: status, header: header, body: respBody, now: c.cfg.Now(), secret: c.cfg.APIKey}
	if err != nil {
		o.ctxErr = cctx.Err()
	}
	if derr := interpret(o); derr != nil {
		return nil, u.fail(ctx, op, derr)
	}
	c.metrics.userdb.WithLabelValues(op, outcomeOK).Inc()
	c.log.LogAttrs(ctx, slog.LevelDebug, "kevel: userdb", slog.String("op", op), slog.Int("status", status), slog.Duration("elapsed", time.Since(start)))
	return respBody, nil
}

func (u *UserDB) fail(ctx context.Context, op string, err error) error {
	outcome := outcomeOf(err)
	if errors.Is(err, ErrAPIKeyRequired) {
		outcome = "api_key_required"
	}
	u.c.metrics.userdb.WithLabelValues(op, outcome).Inc()
	u.c.log.LogAttrs(ctx, slog.LevelWarn, "kevel: userdb call failed", slog.String("op", op), slog.String("outcome", outcome), slog.String("error", err.Error()))
	return err
}
