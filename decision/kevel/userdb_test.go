package kevel_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/decision"
	"github.com/adshare/adshare/decision/kevel"
	"github.com/adshare/adshare/decision/kevel/kevelfake"
)

func TestUserDB(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	udb := b.client.UserDB()
	ctx := context.Background()
	const key = "ue1 a&b=c" // escaped as a query parameter

	rec, err := udb.Read(ctx, key)
	require.NoError(t, err)
	require.Equal(t, key, rec.Key)
	require.Nil(t, rec.Extra, "internal fields (isNew, cookieMonster...) are stripped")

	require.NoError(t, udb.SetCustom(ctx, key, map[string]any{"age": 34, "plan": "pro"}))
	require.NoError(t, udb.OptOut(ctx, key))
	require.NoError(t, udb.SetConsent(ctx, key, true))
	rec, err = udb.Read(ctx, key)
	require.NoError(t, err)
	require.Equal(t, kevel.JSONObject{"age": json.Number("34"), "plan": "pro"}, rec.Custom)
	require.True(t, rec.OptOut)
	require.Equal(t, &kevel.UserConsent{GDPR: true}, rec.Consent)
	require.Nil(t, rec.Extra)

	require.NoError(t, udb.Forget(ctx, key))
	_, ok := b.fake.User(key)
	require.False(t, ok, "forgotten")
	require.NotContains(t, b.logs.String(), "ue1 a", "user keys are not logged")
}

func TestUserDBKeyHandling(t *testing.T) {
	t.Parallel()
	b := setup(t, nil, func(c *kevel.Config) { c.APIKey = "" })
	udb := b.client.UserDB()
	ctx := context.Background()
	before := b.fake.Stats().UserDB
	require.ErrorIs(t, udb.SetCustom(ctx, "u", map[string]any{"a": 1}), kevel.ErrAPIKeyRequired)
	require.ErrorIs(t, udb.SetConsent(ctx, "u", true), kevel.ErrAPIKeyRequired)
	require.ErrorIs(t, udb.Forget(ctx, "u"), kevel.ErrAPIKeyRequired)
	require.Equal(t, before, b.fake.Stats().UserDB, "refused before any call")
	require.NoError(t, udb.OptOut(ctx, "u"), "not protected by the spec")
	_, err := udb.Read(ctx, "u")
	require.NoError(t, err)

	wrong := setup(t, nil, func(c *kevel.Config) { c.APIKey = "not-the-key" })
	err = wrong.client.UserDB().Forget(ctx, "u")
	require.ErrorIs(t, err, decision.ErrUnavailable, "403: a configuration problem, not the caller's")
	require.Equal(t, 1, wrong.fake.Stats().Unauthorized)

	_, err = udb.Read(ctx, "")
	require.ErrorIs(t, err, decision.ErrInvalidRequest)
	require.ErrorIs(t, wrong.client.UserDB().SetConsent(ctx, "", true), decision.ErrInvalidRequest)
}

func TestUserDBFailures(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	udb := b.client.UserDB()
	ctx := context.Background()
	for _, tt := range []struct {
		description string
		fault       kevelfake.Fault
		expectErr   error
	}{
		{"500", kevelfake.Fault{Path: "/udb/23/read", Status: 500}, decision.ErrUnavailable},
		{"429", kevelfake.Fault{Path: "/udb/23/read", Status: 429, RetryAfter: "3"}, decision.ErrRateLimited},
		{"malformed record", kevelfake.Fault{Path: "/udb/23/read", Body: []byte(`{"key": `)}, decision.ErrUnavailable},
		{"not an object", kevelfake.Fault{Path: "/udb/23/read", Body: []byte(`[1]`)}, decision.ErrUnavailable},
	} {
		b.fake.QueueFaults(tt.fault)
		_, err := udb.Read(ctx, "u")
		require.ErrorIs(t, err, tt.expectErr, tt.description)
	}
}
