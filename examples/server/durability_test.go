package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/analytics/tracking"
	"github.com/adshare/adshare/store/postgres/postgrestest"
)

// TestNoAcceptedEventIsLostWhenKilled runs the real server binary on
// PostgreSQL, loads POST /events from many clients, kills the process with
// SIGKILL in the middle of the load, starts it again and checks that every
// event whose answer said accepted (or duplicate) is in the database.
func TestNoAcceptedEventIsLostWhenKilled(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds and kills a server binary")
	}
	dir := t.TempDir()
	bin := buildVersion(t, dir, "test")

	dbURL := postgrestest.URL(t)
	key := make([]byte, 32)
	for i := range key {
		key[i] = byte(i * 7)
	}
	addr := freeAddr(t)
	base := "http://" + addr
	env := append(os.Environ(),
		"DATABASE_URL="+dbURL, "ADSHARE_ADDR="+addr, "ADSHARE_MIGRATE_ON_START=true", "ADSHARE_ACCESS_LOG=false",
		"ADSHARE_CLIENT_RATE=60000000", "ADSHARE_TRACKING_KEYS="+base64.StdEncoding.EncodeToString(key), "ADSHARE_LOG_FORMAT=json",
	)
	start := func() *exec.Cmd {
		cmd := exec.Command(bin)
		cmd.Env = env
		log, err := os.Create(filepath.Join(dir, fmt.Sprintf("server-%d.log", time.Now().UnixNano())))
		require.NoError(t, err)
		cmd.Stdout, cmd.Stderr = log, log
		require.NoError(t, cmd.Start())
		t.Cleanup(func() { _ = cmd.Process.Kill(); _, _ = cmd.Process.Wait() })
		require.Eventually(t, func() bool {
			resp, err := http.Get(base + "/healthz")
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK
		}, 30*time.Second, 50*time.Millisecond, "server up")
		return cmd
	}
	server := start()

	owner := postJSON(t, base+"/auth/register", "", `{"email":"owner@example.com","password":"a long enough passphrase"}`, http.StatusCreated)
	ownerID := uuid.MustParse(owner["user"].(map[string]any)["id"].(string))
	sealer, err := tracking.NewSealer([][]byte{key}, nil)
	require.NoError(t, err)
	const n = 20_000
	tokens := make([]string, n)
	now := time.Now().UTC()
	for i := range tokens {
		tokens[i], err = sealer.Seal(tracking.Payload{
			ID: uuid.Must(uuid.NewV7()),
			Ad: tracking.Ad{Owner: ownerID, ViewerKey: fmt.Sprint("viewer-", i), Placement: "main",
				Source: "local", AdID: "ad-1", AdvertiserID: "adv-1", PriceModel: "cpm", PriceMicros: 2_000_000, Billable: true,
				IssuedAt: now.Add(-5 * time.Second)},
			ExpiresAt: now.Add(time.Hour),
		})
		require.NoError(t, err)
	}

	// Load from 32 clients; kill the server once a few thousand are in.
	var (
		mu       sync.Mutex
		accepted = map[uuid.UUID]bool{}
		next     = make(chan int, n)
		wg       sync.WaitGroup
	)
	for i := range n {
		next <- i
	}
	close(next)
	client := &http.Client{Timeout: 5 * time.Second}
	for range 32 {
		wg.Go(func() {
			for i := range next {
				body := `{"type":"impression","token":"` + tokens[i] + `"}`
				resp, err := client.Post(base+"/events", "application/json", bytes.NewBufferString(body))
				if err != nil {
					return // the server is gone
				}
				raw, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				var res struct {
					TrackingID uuid.UUID `json:"tracking_id"`
					Status     string    `json:"status"`
				}
				if resp.StatusCode == http.StatusOK && json.Unmarshal(raw, &res) == nil && (res.Status == "accepted" || res.Status == "duplicate") {
					mu.Lock()
					accepted[res.TrackingID] = true
					mu.Unlock()
				}
			}
		})
	}
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(accepted) >= 2000
	}, 60*time.Second, 5*time.Millisecond)
	require.NoError(t, server.Process.Signal(syscall.SIGKILL))
	_, _ = server.Process.Wait()
	wg.Wait()
	mu.Lock()
	acked := len(accepted)
	mu.Unlock()
	require.Less(t, acked, n, "the kill landed in the middle of the load")

	// After a restart, every acknowledged event is there.
	start()
	conn, err := pgx.Connect(context.Background(), dbURL)
	require.NoError(t, err)
	defer conn.Close(context.Background())
	ids := make([]uuid.UUID, 0, acked)
	for id := range accepted {
		ids = append(ids, id)
	}
	var stored int
	require.NoError(t, conn.QueryRow(context.Background(),
		`SELECT count(DISTINCT tracking_id) FROM events WHERE type = 'impression' AND tracking_id = ANY($1)`, ids).Scan(&stored))
	require.Equal(t, acked, stored, "every acknowledged event survived SIGKILL")
	t.Logf("%d events acknowledged before SIGKILL, %d of them stored after restart", acked, stored)

	// A client retrying after the crash gets "duplicate", not a second count.
	retry := postJSON(t, base+"/events", "", `{"type":"impression","token":"`+tokens[0]+`"}`, http.StatusOK)
	require.Contains(t, []any{"duplicate", "accepted"}, retry["status"])
}

// freeAddr returns a loopback address with a port nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}
