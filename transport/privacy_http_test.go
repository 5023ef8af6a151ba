package transport

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/auth"
)

// concurrently sends r twice at once and returns both replies.
func concurrently(t *testing.T, b *billingBundle, r request) [2]reply {
	t.Helper()
	var out [2]reply
	var wg sync.WaitGroup
	for i := range out {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = b.send(t, r)
		}()
	}
	wg.Wait()
	return out
}

// waitExport polls an export's status until it is no longer pending.
func waitExport(t *testing.T, b *billingBundle, token string, id uuid.UUID) exportJSON {
	t.Helper()
	var e exportJSON
	require.Eventually(t, func() bool {
		r := b.do(t, http.MethodGet, "/exports/"+id.String(), token, nil)
		if r.status != http.StatusOK {
			return false
		}
		r.decode(t, &e)
		return true
	}, 30*time.Second, 20*time.Millisecond)
	return e
}

func TestExportHTTP(t *testing.T) {
	t.Parallel()
	forEachBillingBackend(t, billingOpts{manual: true, privacy: true}, func(t *testing.T, b *billingBundle) {
		owner := b.register(t, "export.owner@example.com")
		other := b.register(t, "export.other@example.com")
		admin := b.promote(t, b.register(t, "export.admin@example.com"), auth.RoleAdmin)

		// Twice at once: one export, the same for both.
		release := b.holdPrivacyJobs(t)
		replies := concurrently(t, b, request{method: http.MethodGet, path: "/users/me/export", token: owner.AccessToken})
		var first, second exportJSON
		replies[0].requireStatus(t, http.StatusAccepted).decode(t, &first)
		replies[1].requireStatus(t, http.StatusAccepted).decode(t, &second)
		require.Equal(t, first.ID, second.ID, "a second request while one is pending gets the pending one")
		require.Equal(t, "pending", first.Status)
		require.Equal(t, "/exports/"+first.ID.String(), first.StatusURL)
		require.Empty(t, first.DownloadURL)

		// Someone else: 404, as for an unknown export; an admin sees it.
		b.do(t, http.MethodGet, "/exports/"+first.ID.String(), other.AccessToken, nil).problem(t, http.StatusNotFound, "export_not_found")
		b.do(t, http.MethodGet, "/exports/"+uuid.NewString(), owner.AccessToken, nil).problem(t, http.StatusNotFound, "export_not_found")
		b.do(t, http.MethodGet, "/exports/"+first.ID.String(), "", nil).problem(t, http.StatusUnauthorized, "invalid_token")
		b.do(t, http.MethodGet, "/exports/"+first.ID.String(), admin.AccessToken, nil).requireStatus(t, http.StatusAccepted)
		b.do(t, http.MethodPost, "/admin/users/"+owner.User.ID.String()+"/export", other.AccessToken, nil).problem(t, http.StatusForbidden, "forbidden")
		b.do(t, http.MethodPost, "/admin/users/"+uuid.NewString()+"/export", admin.AccessToken, nil).problem(t, http.StatusNotFound, "user_not_found")
		var byAdmin exportJSON
		b.do(t, http.MethodPost, "/admin/users/"+owner.User.ID.String()+"/export", admin.AccessToken, nil).
			requireStatus(t, http.StatusAccepted).decode(t, &byAdmin)
		require.Equal(t, first.ID, byAdmin.ID)
		release()

		ready := waitExport(t, b, owner.AccessToken, first.ID)
		require.Equal(t, "ready", ready.Status)
		require.NotNil(t, ready.ExpiresAt)
		require.WithinDuration(t, b.bclock.Now().Add(24*time.Hour), *ready.ExpiresAt, time.Second)
		require.True(t, strings.HasPrefix(ready.DownloadURL, "/exports/download/"))

		// A token that was not issued, or was tampered with: 404.
		b.do(t, http.MethodGet, "/exports/download/not-a-token", "", nil).problem(t, http.StatusNotFound, "export_not_found")
		tampered := ready.DownloadURL[:len(ready.DownloadURL)-2] + "AA"
		if tampered == ready.DownloadURL {
			tampered = ready.DownloadURL[:len(ready.DownloadURL)-2] + "BB"
		}
		b.do(t, http.MethodGet, tampered, "", nil).problem(t, http.StatusNotFound, "export_not_found")

		// The download needs no access token, and works once: of two at
		// once, one gets the bundle and the other 410.
		both := concurrently(t, b, request{method: http.MethodGet, path: ready.DownloadURL})
		if both[0].status != http.StatusOK {
			both[0], both[1] = both[1], both[0]
		}
		got := both[0].requireStatus(t, http.StatusOK)
		both[1].problem(t, http.StatusGone, "export_gone")
		require.Equal(t, "no-store", got.header.Get("Cache-Control"))
		var bundle struct {
			Format   string                     `json:"format"`
			UserID   uuid.UUID                  `json:"user_id"`
			Sections map[string]json.RawMessage `json:"sections"`
		}
		require.NoError(t, json.Unmarshal(got.body, &bundle))
		require.Equal(t, "adshare.export/v1", bundle.Format)
		require.Equal(t, owner.User.ID, bundle.UserID)
		require.Contains(t, string(bundle.Sections["profile"]), "export.owner@example.com")
		require.Contains(t, bundle.Sections, "events")
		b.do(t, http.MethodGet, ready.DownloadURL, "", nil).problem(t, http.StatusGone, "export_gone")
		b.do(t, http.MethodGet, "/exports/"+first.ID.String(), owner.AccessToken, nil).requireStatus(t, http.StatusOK)

		// A new export, left past its expiry: 410 too.
		var next exportJSON
		b.do(t, http.MethodGet, "/users/me/export", owner.AccessToken, nil).requireStatus(t, http.StatusAccepted).decode(t, &next)
		require.NotEqual(t, first.ID, next.ID)
		next = waitExport(t, b, owner.AccessToken, next.ID)
		b.bclock.Advance(25 * time.Hour)
		b.do(t, http.MethodGet, next.DownloadURL, "", nil).problem(t, http.StatusGone, "export_gone")
		b.do(t, http.MethodGet, next.DownloadURL, "", nil).problem(t, http.StatusGone, "export_gone")
	})
}

func TestErasureHTTP(t *testing.T) {
	t.Parallel()
	forEachBillingBackend(t, billingOpts{manual: true, privacy: true}, func(t *testing.T, b *billingBundle) {
		owner := b.register(t, "erase.owner@example.com")
		other := b.register(t, "erase.other@example.com")
		adv := b.promote(t, b.register(t, "erase.adv@example.com"), auth.RoleAdvertiser)
		admin := b.promote(t, b.register(t, "erase.admin@example.com"), auth.RoleAdmin)

		// The owner earns and asks for a payout (manual: it waits).
		funded := b.topUp(t, adv.AccessToken, loopTopUp)
		b.do(t, http.MethodPost, "/billing/topups/"+funded.ID.String()+"/confirm", admin.AccessToken, nil).requireStatus(t, http.StatusOK)
		b.serve(t, owner.User.ID, adv.User.ID, loopN, loopCPM, loopShareBP)
		b.settleAndRelease(t)
		payout := b.requestPayout(t, owner.AccessToken, map[string]any{})

		erase := func(tok tokenJSON, body any) reply {
			return b.do(t, http.MethodDelete, "/users/me", tok.AccessToken, body)
		}
		// Re-authentication: a wrong password, or none.
		erase(owner, map[string]string{"password": "not the passphrase"}).problem(t, http.StatusUnauthorized, "invalid_credentials")
		erase(owner, map[string]string{}).problem(t, http.StatusUnauthorized, "reauthentication_required")
		b.do(t, http.MethodDelete, "/users/me", "", map[string]string{"password": testPassword}).problem(t, http.StatusUnauthorized, "invalid_token")
		// A payout on its way: refused, by the owner and by an admin.
		erase(owner, map[string]string{"password": testPassword}).problem(t, http.StatusConflict, "payout_pending")
		b.do(t, http.MethodPost, "/admin/users/"+owner.User.ID.String()+"/erase", admin.AccessToken, nil).problem(t, http.StatusConflict, "payout_pending")
		// Someone else may not.
		b.do(t, http.MethodPost, "/admin/users/"+owner.User.ID.String()+"/erase", other.AccessToken, nil).problem(t, http.StatusForbidden, "forbidden")
		b.do(t, http.MethodGet, "/users/me", owner.AccessToken, nil).requireStatus(t, http.StatusOK)

		// Paid: now the owner may go; twice at once is one erasure.
		b.do(t, http.MethodPost, "/billing/payouts/"+payout.ID.String()+"/record", admin.AccessToken, map[string]any{"paid": true}).
			requireStatus(t, http.StatusOK)
		release := b.holdPrivacyJobs(t)
		replies := concurrently(t, b, request{method: http.MethodDelete, path: "/users/me", token: owner.AccessToken,
			body: map[string]string{"password": testPassword}})
		var first, second erasureJSON
		replies[0].requireStatus(t, http.StatusAccepted).decode(t, &first)
		replies[1].requireStatus(t, http.StatusAccepted).decode(t, &second)
		require.Equal(t, first.ID, second.ID)
		b.do(t, http.MethodGet, "/admin/erasures/"+first.ID.String(), other.AccessToken, nil).problem(t, http.StatusNotFound, "erasure_not_found")
		release()

		var done erasureJSON
		require.Eventually(t, func() bool {
			r := b.do(t, http.MethodGet, "/admin/erasures/"+first.ID.String(), admin.AccessToken, nil)
			if r.status != http.StatusOK {
				return false
			}
			r.decode(t, &done)
			return true
		}, 30*time.Second, 20*time.Millisecond)
		require.Equal(t, "done", done.Status)
		require.Equal(t, []string{"sessions", "processor", "stores"}, done.Steps)

		// Gone: the token is refused, the account cannot sign in, an
		// admin finds no such user.
		b.do(t, http.MethodGet, "/users/me", owner.AccessToken, nil).requireStatus(t, http.StatusUnauthorized)
		b.do(t, http.MethodPost, "/auth/login", "", map[string]string{"email": "erase.owner@example.com", "password": testPassword}).
			problem(t, http.StatusUnauthorized, "invalid_credentials")
		b.do(t, http.MethodGet, "/users/"+owner.User.ID.String(), admin.AccessToken, nil).problem(t, http.StatusNotFound, "user_not_found")
		b.do(t, http.MethodPost, "/admin/users/"+owner.User.ID.String()+"/erase", admin.AccessToken, nil).problem(t, http.StatusNotFound, "user_not_found")
	})
}
