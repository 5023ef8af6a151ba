package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/internal/loadtest"
	"github.com/adshare/adshare/store/postgres/postgrestest"
)

// TestLoadMixOnEmbeddedDefaults runs the harness against the example
// server on its embedded defaults (the in-memory store, no PostgreSQL or
// Redis), whose first admin comes from -admin-email: the fleet's roles
// are given through that account over the API, and the mix (without
// payouts: the payees' earnings are posted to PostgreSQL's ledger) and a
// WebSocket client per owner run as on the full setup.
func TestLoadMixOnEmbeddedDefaults(t *testing.T) {
	t.Parallel()
	loadAlone(t)
	rate, d := 150, 5*time.Second
	if loadProfile() == "full" {
		rate, d = 600, 30*time.Second
	}
	op := loadtest.Credentials{Email: "operator@load.example.com", Password: "the operator's long passphrase"}
	base, _ := startServer(t, map[string]string{"ADSHARE_ACCESS_LOG": "false", "ADSHARE_CLIENT_RATE": "6000000",
		"ADSHARE_USER_RATE": "6000000", "ADSHARE_TRUSTED_PROXIES": "127.0.0.1/32",
		"ADSHARE_ADMIN_EMAIL": op.Email, "ADSHARE_ADMIN_PASSWORD": op.Password})
	ctx := context.Background()
	fleet, err := loadtest.Setup(ctx, loadtest.FleetConfig{Base: base, Owners: 20, Tokens: 1000, Operator: &op})
	require.NoError(t, err)
	rep := runFleetMix(t, fleet, "mix-embedded", rate, d)
	require.Nil(t, rep.Route(loadtest.RoutePayout), "a fleet without payees asks for no payouts")
	require.Equal(t, len(fleet.Owners), rep.Sockets.Open, "every client is connected at the end")
	require.Positive(t, rep.Sockets.Messages["metrics.live"])
}

// -admin-email makes its account an admin at start, once (a restart on
// the same database finds it); an account that already had the email is
// never promoted by it; and the two settings go together.
func TestAdminEmailMakesTheFirstAdmin(t *testing.T) {
	t.Parallel()
	const password = "the operator's long passphrase"
	role := func(base, email string) string {
		p := send(http.MethodPost, base+"/auth/login", `{"email":"`+email+`","password":"`+password+`"}`)
		require.Equal(t, http.StatusOK, p.status, p.body)
		var out struct {
			User struct {
				Role string `json:"role"`
			} `json:"user"`
		}
		require.NoError(t, json.Unmarshal([]byte(p.body), &out))
		return out.User.Role
	}
	base, _ := startServer(t, map[string]string{"ADSHARE_ADMIN_EMAIL": "Root@Example.com", "ADSHARE_ADMIN_PASSWORD": password})
	require.Equal(t, "admin", role(base, "root@example.com"), "on the in-memory store")

	db := postgrestest.URL(t)
	env := map[string]string{"DATABASE_URL": db, "ADSHARE_ADMIN_EMAIL": "root@example.com", "ADSHARE_ADMIN_PASSWORD": password}
	for range 2 { // the second start finds the account
		base, _ := startServer(t, env, "-migrate-on-start")
		require.Equal(t, "admin", role(base, "root@example.com"))
	}
	// Someone registered the email before the operator named it.
	base, _ = startServer(t, map[string]string{"DATABASE_URL": db}, "-migrate-on-start")
	p := send(http.MethodPost, base+"/auth/register", `{"email":"early@example.com","password":"`+password+`"}`)
	require.Equal(t, http.StatusCreated, p.status, p.body)
	base, _ = startServer(t, map[string]string{"DATABASE_URL": db, "ADSHARE_ADMIN_EMAIL": "early@example.com", "ADSHARE_ADMIN_PASSWORD": password})
	require.Equal(t, "user", role(base, "early@example.com"), "an existing account is never promoted by -admin-email")

	for name, e := range map[string]map[string]string{
		"email alone":    {"ADSHARE_ADMIN_EMAIL": "root@example.com"},
		"password alone": {"ADSHARE_ADMIN_PASSWORD": password},
		"a bad email":    {"ADSHARE_ADMIN_EMAIL": "not an email", "ADSHARE_ADMIN_PASSWORD": password},
	} {
		_, _, err := parseConfig("server", nil, func(k string) string { return e[k] }, io.Discard)
		require.Error(t, err, name)
	}
}
