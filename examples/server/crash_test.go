package main

import (
	"context"
	"encoding/json"
	"fmt"
	mathrand "math/rand/v2"
	"net/http"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/internal/loadtest"
)

// TestCrashConsistencyUnderMixedLoad runs the server binary on
// PostgreSQL and Redis under the fleet's mixed load and SIGKILLs it at a
// random moment, several rounds (3 in CI, 10 in the full profile),
// restarting it each time. Then it counts: every event whose answer said
// accepted or duplicate is stored exactly once; the rollups equal a
// recount from the raw events; every ledger transaction balances; no
// payout is made twice, and none moves more than it reserved; a session
// signed out before a crash stays signed out after it.
func TestCrashConsistencyUnderMixedLoad(t *testing.T) {
	t.Parallel()
	loadSlot(t)
	rounds := 3
	if loadProfile() == "full" {
		rounds = 10
	}
	srv := serverProcess(t)
	server := srv.start()
	base, dbURL := srv.base, srv.env["DATABASE_URL"]
	// Payouts at 1% of the mix (at 150 req/s, one within 0.4 s of a
	// round's start and at most five in its 3 s), each payee asking once.
	mix := loadtest.Weights{Payout: 10}
	fleet := srv.fleet(t, loadtest.FleetConfig{Owners: 12, Spare: rounds + 1, Tokens: 800, Payees: 6*rounds + 2})
	checked := fleet.Spare[0]
	mine := tokensOf(t, base, checked.ID, 600*rounds)

	var (
		mu        sync.Mutex
		acked     = map[uuid.UUID]bool{} // tracking ids the server said it stored
		refused   []string               // tokens without such an answer: the app retries them
		nextTok   int
		signedOut []*loadtest.Member
	)
	roundEnd := 0 // tokens up to here are this round's
	post := func() {
		mu.Lock()
		if nextTok >= roundEnd {
			mu.Unlock()
			time.Sleep(10 * time.Millisecond)
			return
		}
		tok := mine[nextTok]
		nextTok++
		mu.Unlock()
		p := impressionOf(base, tok, "10.250.0.3")
		var res struct {
			TrackingID uuid.UUID `json:"tracking_id"`
			Status     string    `json:"status"`
		}
		mu.Lock()
		defer mu.Unlock()
		if p.status == http.StatusOK && json.Unmarshal([]byte(p.body), &res) == nil && (res.Status == "accepted" || res.Status == "duplicate") {
			acked[res.TrackingID] = true
		} else {
			refused = append(refused, tok)
		}
	}
	rnd := mathrand.New(mathrand.NewPCG(uint64(time.Now().UnixNano()), 7))
	for round := range rounds {
		// A session signed out now must stay out after the crash.
		m := fleet.Spare[round+1]
		require.Equal(t, http.StatusNoContent, send(http.MethodPost, base+"/auth/logout", "", "Authorization", "Bearer "+m.Access,
			"X-Forwarded-For", m.Addr).status)
		signedOut = append(signedOut, m)

		mu.Lock()
		roundEnd = min(roundEnd+600, len(mine))
		mu.Unlock()
		stop := backgroundLoad(t, fleet, 150, time.Minute, mix)
		done := make(chan struct{})
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				for {
					select {
					case <-done:
						return
					default:
						post()
						// Eight checkers at about 25 a second each: a
						// round's 600 last past the latest kill.
						time.Sleep(40 * time.Millisecond)
					}
				}
			})
		}
		time.Sleep(time.Duration(500+rnd.IntN(2500)) * time.Millisecond)
		require.NoError(t, server.Process.Signal(syscall.SIGKILL))
		_, _ = server.Process.Wait()
		close(done)
		wg.Wait()
		stop()
		server = srv.start()
		mu.Lock()
		t.Logf("round %d: %d acknowledged, %d refused so far", round+1, len(acked), len(refused))
		mu.Unlock()
	}

	// The app retries what got no answer: each is stored now, or was by
	// a write whose answer the crash lost (duplicate).
	for _, tok := range refused {
		p := impressionOf(base, tok, "10.250.0.3")
		require.Equal(t, http.StatusOK, p.status, p.body)
		var res struct {
			TrackingID uuid.UUID `json:"tracking_id"`
			Status     string    `json:"status"`
		}
		require.NoError(t, json.Unmarshal([]byte(p.body), &res))
		require.Contains(t, []string{"accepted", "duplicate"}, res.Status)
		acked[res.TrackingID] = true
	}
	for _, m := range signedOut {
		body, _ := json.Marshal(map[string]string{"refresh_token": m.Refresh[0]})
		p := send(http.MethodPost, base+"/auth/refresh", string(body), "X-Forwarded-For", m.Addr)
		require.Equal(t, http.StatusUnauthorized, p.status, "a session signed out before a crash is not resurrected: %s", p.body)
	}

	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	require.NoError(t, err)
	defer conn.Close(ctx)
	var stored, distinct int
	require.NoError(t, conn.QueryRow(ctx, `SELECT count(*), count(DISTINCT tracking_id) FROM events
		WHERE type = 'impression' AND owner_id = $1`, checked.ID).Scan(&stored, &distinct))
	require.Equal(t, len(acked), stored, "every acknowledged impression is stored, and nothing else for this owner")
	require.Equal(t, stored, distinct, "none twice")
	require.Greater(t, stored, 0)

	// The rollups equal a recount from the raw events, owner by owner.
	var mismatched []string
	rows, err := conn.Query(ctx, `
		WITH e AS (
			SELECT owner_id, count(*) FILTER (WHERE type = 'impression') AS imp,
				count(*) FILTER (WHERE type = 'impression' AND valid) AS vimp,
				count(*) FILTER (WHERE type = 'click') AS clk,
				count(*) FILTER (WHERE type = 'click' AND valid) AS vclk
			FROM events GROUP BY owner_id),
		r AS (
			SELECT owner_id, sum(impressions) AS imp, sum(valid_impressions) AS vimp, sum(clicks) AS clk, sum(valid_clicks) AS vclk
			FROM rollups_hourly GROUP BY owner_id HAVING sum(impressions) + sum(clicks) > 0)
		SELECT owner_id::text, coalesce(e.imp, 0), coalesce(r.imp, 0), coalesce(e.clk, 0), coalesce(r.clk, 0)
		FROM e FULL JOIN r USING (owner_id)
		WHERE coalesce(e.imp, 0) <> coalesce(r.imp, 0) OR coalesce(e.vimp, 0) <> coalesce(r.vimp, 0)
			OR coalesce(e.clk, 0) <> coalesce(r.clk, 0) OR coalesce(e.vclk, 0) <> coalesce(r.vclk, 0)`)
	require.NoError(t, err)
	for rows.Next() {
		var owner string
		var ei, ri, ec, rc int64
		require.NoError(t, rows.Scan(&owner, &ei, &ri, &ec, &rc))
		mismatched = append(mismatched, fmt.Sprintf("%s: impressions %d raw, %d rolled up; clicks %d raw, %d rolled up", owner, ei, ri, ec, rc))
	}
	require.NoError(t, rows.Err())
	require.Empty(t, mismatched, "rollups equal a recount")
	var events int
	require.NoError(t, conn.QueryRow(ctx, `SELECT count(*) FROM events`).Scan(&events))
	require.Greater(t, events, stored, "the mix's events are in the recount too")

	// Every ledger transaction balances.
	var unbalanced, transactions int
	require.NoError(t, conn.QueryRow(ctx, `SELECT count(*) FROM (SELECT tx_id FROM ledger_entries GROUP BY tx_id
		HAVING sum(CASE side WHEN 'debit' THEN amount ELSE -amount END) <> 0) u`).Scan(&unbalanced))
	require.NoError(t, conn.QueryRow(ctx, `SELECT count(DISTINCT tx_id) FROM ledger_entries`).Scan(&transactions))
	require.Zero(t, unbalanced, "every transaction balances")
	require.Positive(t, transactions)

	// No payout twice: each payee asked once, so has one payout at most,
	// reserved once; and what each payee has left and on its way is what
	// it earned, what is on its way its pending payouts.
	var payouts, payees, misreserved int
	require.NoError(t, conn.QueryRow(ctx, `SELECT count(*), count(DISTINCT owner_id),
		count(*) FILTER (WHERE (SELECT count(*) FROM ledger_transactions t WHERE t.key = 'payout:' || p.id || ':reserve') <> 1)
		FROM billing_payouts p`).Scan(&payouts, &payees, &misreserved))
	require.Positive(t, payouts, "the mix asked for payouts")
	require.Equal(t, payouts, payees, "no payee was paid out twice")
	require.Zero(t, misreserved, "every payout is reserved once")
	for _, m := range fleet.Payees {
		var available, inTransit, pending int64
		require.NoError(t, conn.QueryRow(ctx, `SELECT
			coalesce((SELECT balance FROM ledger_accounts WHERE account_id = 'available:' || $1::text || ':usd'), 0),
			coalesce((SELECT balance FROM ledger_accounts WHERE account_id = 'in_transit:' || $1::text || ':usd'), 0),
			coalesce((SELECT sum(amount) FROM billing_payouts WHERE owner_id::text = $1 AND status = 'pending'), 0)::bigint`,
			m.ID).Scan(&available, &inTransit, &pending))
		require.Equal(t, int64(2*5000*10_000), available+inTransit, "%s: earnings kept", m.Email)
		require.Equal(t, pending*10_000, inTransit, "%s: on its way is its pending payout", m.Email)
	}
	t.Logf("%d rounds: %d impressions acknowledged and stored once, %d events recounted, %d ledger transactions balanced, %d payouts made once",
		rounds, stored, events, transactions, payouts)
}
