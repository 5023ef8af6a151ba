package transport

import (
	"net/http"

	"github.com/adshare/adshare/transport/apidocs"
)

// route is one endpoint: a method, a ServeMux path pattern (which is also its
// OpenAPI path) and its handler.
type route struct {
	method  string
	path    string
	handler http.Handler
}

// routes lists every endpoint of the API. The OpenAPI document must list
// exactly these (TestOpenAPIDocumentsEveryRoute).
func (s *server) routes() []route {
	rs := []route{
		{http.MethodGet, "/healthz", s.handleHealthz()},
		{http.MethodGet, "/readyz", s.handleReadyz()},
		{http.MethodGet, "/openapi.json", s.handleOpenAPI()},
		{http.MethodGet, "/docs", apidocs.Page()},
		{http.MethodGet, "/docs/{asset}", apidocs.Asset(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s.writeError(w, r, errNotFound)
		}))},
	}
	if s.auth != nil {
		rs = append(rs,
			route{http.MethodGet, "/.well-known/jwks.json", s.handleJWKS()},
			route{http.MethodPost, "/auth/register", s.handleRegister()},
			route{http.MethodPost, "/auth/login", s.handleLogin()},
			route{http.MethodPost, "/auth/refresh", s.handleRefresh()},
			route{http.MethodPost, "/auth/logout", s.handleLogout()},
			route{http.MethodPut, "/auth/password", s.handleChangePassword()},
			route{http.MethodGet, "/auth/sessions", s.handleListSessions()},
			route{http.MethodDelete, "/auth/sessions", s.handleRevokeAllSessions()},
			route{http.MethodDelete, "/auth/sessions/{id}", s.handleRevokeSession()},
			route{http.MethodGet, "/auth/providers", s.handleProviders()},
			route{http.MethodPost, "/auth/oidc/{provider}/authorize", s.handleOIDCAuthorize()},
			route{http.MethodPost, "/auth/oidc/{provider}/callback", s.handleOIDCCallback()},
			route{http.MethodPost, "/auth/oidc/{provider}/nonce", s.handleOIDCNonce()},
			route{http.MethodPost, "/auth/oidc/{provider}/id-token", s.handleOIDCIDToken()},
			route{http.MethodGet, "/users/me", s.handleGetMe()},
			route{http.MethodPatch, "/users/me", s.handlePatchMe()},
			route{http.MethodPost, "/users/me/advertiser", s.handleBecomeAdvertiser()},
			route{http.MethodGet, "/users/me/consent", s.handleGetConsent()},
			route{http.MethodPut, "/users/me/consent", s.handlePutConsent()},
			route{http.MethodGet, "/users/{id}", s.handleGetUser()},
			route{http.MethodPut, "/users/{id}/tier", s.handleSetTier()},
			route{http.MethodPut, "/users/{id}/role", s.handleSetRole()},
			route{http.MethodDelete, "/users/{id}/sessions", s.handleAdminRevokeSessions()},
			route{http.MethodGet, "/tiers", s.handleTiers()},
			route{http.MethodGet, "/audit-events", s.handleAuditEvents()},
		)
	}
	if s.auth != nil && s.spaces != nil {
		rs = append(rs,
			route{http.MethodGet, "/ad-space/{userId}", s.handleFill()},
			route{http.MethodGet, "/ad-space/settings", s.handleGetSettings()},
			route{http.MethodPut, "/ad-space/settings", s.handlePutSettings()},
			route{http.MethodPost, "/ad-space/content", s.handleCreateContent()},
			route{http.MethodGet, "/ad-space/content", s.handleListContent()},
			route{http.MethodGet, "/ad-space/content/{id}", s.handleGetContent()},
			route{http.MethodPut, "/ad-space/content/{id}", s.handleUpdateContent()},
			route{http.MethodPost, "/ad-space/content/{id}/submit", s.handleContentAction("submit")},
			route{http.MethodPost, "/ad-space/content/{id}/pause", s.handleContentAction("pause")},
			route{http.MethodPost, "/ad-space/content/{id}/resume", s.handleContentAction("resume")},
			route{http.MethodPost, "/ad-space/content/{id}/archive", s.handleContentAction("archive")},
			route{http.MethodGet, "/moderation/queue", s.handleReviewQueue()},
			route{http.MethodPost, "/moderation/content/{id}/approve", s.handleApprove()},
			route{http.MethodPost, "/moderation/content/{id}/reject", s.handleReject()},
		)
	}
	if s.events != nil {
		rs = append(rs,
			route{http.MethodPost, "/events", s.handleEvents()},
			route{http.MethodGet, "/c/{token}", s.handleClick()},
		)
		if s.auth != nil {
			rs = append(rs,
				route{http.MethodGet, "/analytics/performance", s.handlePerformance()},
				route{http.MethodGet, "/analytics/revenue", s.handleRevenue()},
				route{http.MethodGet, "/analytics/users", s.handleUsersReport()},
			)
		}
	}
	if s.auth != nil && s.billing != nil {
		rs = append(rs,
			route{http.MethodPost, "/billing/topups", s.handleStartTopUp()},
			route{http.MethodGet, "/billing/topups/{id}", s.handleGetTopUp()},
			route{http.MethodPost, "/billing/topups/{id}/confirm", s.handleConfirmTopUp()},
			route{http.MethodGet, "/billing/balance", s.handleBalance()},
			route{http.MethodGet, "/billing/transactions", s.handleTransactions()},
			route{http.MethodGet, "/billing/payouts", s.handleListPayouts()},
			route{http.MethodPost, "/billing/payouts", s.handleRequestPayout()},
			route{http.MethodGet, "/billing/payouts/{id}", s.handleGetPayout()},
			route{http.MethodPost, "/billing/payouts/{id}/record", s.handleRecordPayout()},
			route{http.MethodPost, "/billing/payee", s.handleOnboard()},
			route{http.MethodGet, "/billing/payee", s.handleGetPayee()},
			route{http.MethodGet, "/billing/holds", s.handleListHolds()},
			route{http.MethodPost, "/billing/holds", s.handlePlaceHold()},
			route{http.MethodPost, "/billing/holds/{id}/release", s.handleReleaseHold()},
			route{http.MethodGet, "/admin/billing/reconciliation", s.handleReconciliation()},
			route{http.MethodPost, stripeWebhookPath, s.handleStripeWebhook()},
		)
	}
	if s.auth != nil && s.cfg.Realtime != nil {
		rs = append(rs, route{http.MethodGet, "/ws", s.handleWS()})
	}
	if s.auth != nil && s.cfg.Privacy != nil {
		rs = append(rs,
			route{http.MethodGet, "/users/me/export", s.handleRequestExport()},
			route{http.MethodPost, "/admin/users/{id}/export", s.handleAdminRequestExport()},
			route{http.MethodGet, "/exports/{id}", s.handleGetExport()},
			route{http.MethodGet, "/exports/download/{token}", s.handleDownloadExport()},
			route{http.MethodDelete, "/users/me", s.handleEraseMe()},
			route{http.MethodPost, "/admin/users/{id}/erase", s.handleAdminErase()},
			route{http.MethodGet, "/admin/erasures/{id}", s.handleGetErasure()},
		)
	}
	if s.auth != nil && s.cfg.Announcer != nil {
		rs = append(rs, route{http.MethodPost, "/admin/announcements", s.handleAnnounce()})
	}
	return rs
}
