package adshare_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare"
	"github.com/adshare/adshare/adspace"
	"github.com/adshare/adshare/auth"
	"github.com/adshare/adshare/billing"
	"github.com/adshare/adshare/decision/kevel"
	"github.com/adshare/adshare/decision/kevel/kevelfake"
	"github.com/adshare/adshare/internal/testenv"
	"github.com/adshare/adshare/privacy"
	"github.com/adshare/adshare/store/memory"
	"github.com/adshare/adshare/store/postgres"
	"github.com/adshare/adshare/store/postgres/postgrestest"
	"github.com/adshare/adshare/store/redis"
	"github.com/adshare/adshare/transport/realtime"
)

// erasureWorld is one backend under the plant-and-scan test: the app and a
// scan of every place the backend keeps data.
type erasureWorld struct {
	app *adshare.App
	// scan returns where any of needles can be read, one line per place.
	scan func(t *testing.T, needles ...string) []string
	// plantShared puts needle-bearing values where the shared tier keeps
	// things about the user (realtime history, keys named for the user).
	plantShared func(t *testing.T, user uuid.UUID, marker string)
	billing     billing.Store
	users       auth.UserStore
	kevel       *kevelfake.Server
}

// TestErasurePlantAndScan puts a recognisable value (and the user's id)
// in every place personal data can live (the profile, the session's and
// the audit log's user agent, ad content, the ledger, an export's bundle,
// the realtime history and keys of the shared tier, the ad space cache),
// checks that a scan of every table and column, every key and value, or
// every field of the in-memory stores finds it, erases the user, and
// scans again: no hit. The ledger still balances, the user's entries
// stand under the pseudonym, the fake Kevel was told to forget the
// user's viewer key, and the last audit record names no one.
func TestErasurePlantAndScan(t *testing.T) {
	t.Parallel()
	for name, setup := range map[string]func(t *testing.T, cfg *adshare.Config) erasureWorld{
		"memory":         memoryWorld,
		"postgres+redis": postgresRedisWorld,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			fake := kevelfake.StartTB(t, kevelfake.Config{NetworkID: 23, SiteIDs: []int64{1}, APIKey: "kevel-key"})
			kc, err := kevel.New(kevel.Config{NetworkID: 23, SiteID: 1, BaseURL: fake.URL(), APIKey: "kevel-key"})
			require.NoError(t, err)
			cfg := &adshare.Config{Decider: bannerDecider(), ViewerForgetter: kc.UserDB()}
			w := setup(t, cfg)
			w.kevel = fake
			plantAndErase(t, w)
		})
	}
}

func memoryWorld(t *testing.T, cfg *adshare.Config) erasureWorld {
	store, shared := memory.New(), memory.NewShared()
	cfg.Store, cfg.Shared = store, shared
	w := erasureWorld{app: newApp(t, cfg), billing: store, users: store}
	w.scan = func(t *testing.T, needles ...string) []string {
		return reflectHits(reflect.ValueOf(store).Elem(), "store", needles, map[uintptr]bool{}, nil)
	}
	w.plantShared = func(t *testing.T, user uuid.UUID, marker string) {
		publishPlant(t, shared.RealtimeBroker(), user, marker)
	}
	// The shared pieces are scanned too.
	storeScan := w.scan
	w.scan = func(t *testing.T, needles ...string) []string {
		return append(storeScan(t, needles...), reflectHits(reflect.ValueOf(shared).Elem(), "shared", needles, map[uintptr]bool{}, nil)...)
	}
	return w
}

func postgresRedisWorld(t *testing.T, cfg *adshare.Config) erasureWorld {
	ctx := context.Background()
	db := postgrestest.NewWithKeyring(t)
	q, err := db.Jobs(&postgres.JobsConfig{PollInterval: 100 * time.Millisecond})
	require.NoError(t, err)
	url, prefix := testenv.Redis(t)
	rc, err := redis.Open(ctx, url, &redis.Config{Prefix: prefix})
	require.NoError(t, err)
	t.Cleanup(func() { _ = rc.Stop(context.Background()) })
	shared := rc.Shared(nil)
	cfg.Store, cfg.Shared, cfg.Jobs = db, shared, q
	opts, err := goredis.ParseURL(url)
	require.NoError(t, err)
	raw := goredis.NewClient(opts)
	t.Cleanup(func() { _ = raw.Close() })
	w := erasureWorld{app: newApp(t, cfg), billing: db, users: db}
	w.scan = func(t *testing.T, needles ...string) []string {
		return append(postgresHits(t, db, needles), redisHits(t, raw, prefix, needles)...)
	}
	w.plantShared = func(t *testing.T, user uuid.UUID, marker string) {
		publishPlant(t, shared.RealtimeBroker(), user, marker)
		// A key named for the user, and one that only holds the id, as a
		// cache of the user's would be.
		require.NoError(t, raw.Set(ctx, prefix+"plant:"+user.String(), marker, time.Hour).Err())
		require.NoError(t, raw.Set(ctx, prefix+"plant:other", "about "+user.String(), time.Hour).Err())
	}
	return w
}

// publishPlant publishes the marker on a realtime topic named for the user.
func publishPlant(t *testing.T, b realtime.Broker, user uuid.UUID, marker string) {
	t.Helper()
	_, err := b.Publish(context.Background(), "user:"+user.String(), []byte(`{"note":"`+marker+`"}`), realtime.PublishOptions{})
	require.NoError(t, err)
}

func plantAndErase(t *testing.T, w erasureWorld) {
	ctx := context.Background()
	app := w.app
	marker := "plant" + randomHex(t, 6)
	const password = "a long enough passphrase"
	// The client's user agent is kept with the session and the audit log.
	uaCtx := auth.NewContextWithClient(ctx, auth.Client{IP: "198.51.100.23", UserAgent: "agent-" + marker})

	subject, _, err := app.Auth().Register(uaCtx, auth.Registration{Email: marker + "@example.com", Password: password, DisplayName: "Name " + marker})
	require.NoError(t, err)
	_, pair, err := app.Auth().Login(uaCtx, marker+"@example.com", password)
	require.NoError(t, err)
	admin, _, err := app.Auth().Register(ctx, auth.Registration{Email: "admin-" + randomHex(t, 4) + "@example.com", Password: password})
	require.NoError(t, err)
	promote(t, w.users, admin.ID, auth.RoleAdmin)
	promote(t, w.users, subject.ID, auth.RoleAdvertiser)
	adminP := auth.Principal{UserID: admin.ID, Role: auth.RoleAdmin}
	subjectP := auth.Principal{UserID: subject.ID, SessionID: pair.SessionID, Role: auth.RoleAdvertiser}

	// Ad content, and a funded budget: ledger entries on the user's account.
	_, err = app.AdSpaces().CreateContent(ctx, subjectP, adspace.ContentDraft{
		Format: "banner", Title: "Title " + marker, Body: "Body " + marker, ClickURL: "https://" + marker + ".example.com/",
		Bid: adspace.Bid{Model: adspace.BidCPM, Micros: 2_000_000}, TotalBudgetMicros: 1_000_000_000,
	}, true)
	require.NoError(t, err)
	tu, err := app.Billing().StartTopUp(ctx, subjectP, billing.TopUpRequest{Amount: 5_000, Currency: billing.USD, ClientKey: "plant"})
	require.NoError(t, err)
	_, err = app.Billing().ConfirmTopUp(ctx, adminP, tu.ID)
	require.NoError(t, err)
	// The space is filled once (the fill's cache then holds it), the
	// subject watching as a viewer (their consent is cached too).
	_, err = app.AdSpaces().Fill(ctx, adspace.FillRequest{Owner: subject.ID, Viewer: &subjectP})
	require.NoError(t, err)

	// A consent record (its history is kept until the erasure).
	cs, ok := w.users.(auth.ConsentStore)
	require.True(t, ok)
	_, err = cs.AppendConsent(ctx, auth.ConsentRecord{UserID: subject.ID, PolicyVersion: "2026-01",
		Purposes: map[auth.Purpose]bool{}, Source: auth.ConsentSourceAPI, RecordedAt: time.Now()})
	require.NoError(t, err)

	// An export, produced and waiting for its download.
	ex, created, err := app.Privacy().RequestExport(ctx, subjectP)
	require.NoError(t, err)
	require.True(t, created)
	again, created, err := app.Privacy().RequestExport(ctx, subjectP)
	require.NoError(t, err)
	if !created {
		require.Equal(t, ex.ID, again.ID, "a second request while one is pending gets the pending one")
	}
	require.Eventually(t, func() bool {
		e, err := app.Privacy().Export(ctx, subjectP, ex.ID)
		return err == nil && e.Status == privacy.ExportReady
	}, 30*time.Second, 20*time.Millisecond)
	w.plantShared(t, subject.ID, marker)

	// The scan finds what was planted, by value and by id.
	before := w.scan(t, marker, subject.ID.String())
	require.NotEmpty(t, before, "the scan must see the planted values before the erasure")
	t.Logf("planted in %d places before the erasure", len(before))
	totalsBefore, err := w.billing.Totals(ctx)
	require.NoError(t, err)

	// Bad input first: a wrong password erases nothing.
	_, _, err = app.Privacy().RequestErasure(ctx, subjectP, "not the password")
	require.ErrorIs(t, err, auth.ErrInvalidCredentials)
	_, _, err = app.Privacy().RequestErasure(ctx, subjectP, "")
	require.ErrorIs(t, err, auth.ErrReauthRequired)
	other, _, err := app.Auth().Register(ctx, auth.Registration{Email: "other-" + randomHex(t, 4) + "@example.com", Password: password})
	require.NoError(t, err)
	_, _, err = app.Privacy().RequestErasureFor(ctx, auth.Principal{UserID: other.ID, Role: auth.RoleUser}, subject.ID)
	require.ErrorIs(t, err, auth.ErrForbidden)

	er, created, err := app.Privacy().RequestErasure(ctx, subjectP, password)
	require.NoError(t, err)
	require.True(t, created)
	require.Eventually(t, func() bool {
		e, err := app.Privacy().Erasure(ctx, adminP, er.ID)
		return err == nil && e.Status == privacy.ErasureDone
	}, 60*time.Second, 50*time.Millisecond)
	done, err := app.Privacy().Erasure(ctx, adminP, er.ID)
	require.NoError(t, err)
	require.Equal(t, uuid.Nil, done.User, "a done erasure names its user no more")
	require.Contains(t, done.Steps, "ad_server")
	require.Contains(t, done.Steps, "shared")

	// Nothing planted is left, anywhere.
	require.Empty(t, w.scan(t, marker, subject.ID.String()), "the erased user's data is still readable")
	if db, ok := w.billing.(*postgres.DB); ok {
		postgrestest.RequireNoPlaintext(t, db, marker)
		postgrestest.RequireNoPlaintext(t, db, subject.ID.String())
	}

	// The ledger balances as before, the user's entries under the pseudonym.
	totalsAfter, err := w.billing.Totals(ctx)
	require.NoError(t, err)
	require.Equal(t, totalsBefore, totalsAfter)
	for _, dc := range totalsAfter {
		require.Equal(t, dc.Debits, dc.Credits)
	}
	kept, err := w.billing.Transactions(ctx, billing.TxFilter{User: done.Pseudonym})
	require.NoError(t, err)
	require.NotEmpty(t, kept, "the user's ledger entries stand under the pseudonym")

	// Kevel UserDB was told to forget the user's viewer key.
	require.Contains(t, w.kevel.Forgotten(), app.AdSpaces().ViewerKey(subject.ID))

	// The user is gone: no sign-in, no token, no space.
	_, _, err = app.Auth().Login(ctx, marker+"@example.com", password)
	require.ErrorIs(t, err, auth.ErrInvalidCredentials)
	_, err = app.Auth().Authenticate(ctx, pair.AccessToken)
	require.Error(t, err)
	_, err = app.Auth().UserByID(ctx, subject.ID)
	require.ErrorIs(t, err, auth.ErrUserNotFound)
	_, err = app.AdSpaces().Fill(ctx, adspace.FillRequest{Owner: subject.ID, Viewer: &adminP})
	require.ErrorIs(t, err, adspace.ErrSpaceNotFound, "the fill's cache let the space go")

	// The last audit record says an erasure happened, naming no one.
	events, err := app.Auth().AuditEvents(ctx, adminP, auth.AuditFilter{Action: privacy.AuditErasureCompleted})
	require.NoError(t, err)
	require.Len(t, events, 1)
	require.Equal(t, uuid.Nil, events[0].ActorID)
	require.Equal(t, er.ID.String(), events[0].TargetID)
}

func promote(t *testing.T, users auth.UserStore, user uuid.UUID, role auth.Role) {
	t.Helper()
	_, err := users.SetRole(context.Background(), user, role, time.Now())
	require.NoError(t, err)
}

func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return hex.EncodeToString(b)
}

// reflectHits walks v (a store's state, unexported fields included) and
// returns the paths of the strings, byte slices and UUIDs that hold any of
// needles.
func reflectHits(v reflect.Value, path string, needles []string, seen map[uintptr]bool, out []string) []string {
	switch v.Kind() {
	case reflect.String:
		if s := v.String(); containsAny(s, needles) {
			out = append(out, path+" = "+truncate(s))
		}
	case reflect.Array:
		if v.Type() == reflect.TypeOf(uuid.UUID{}) {
			var id uuid.UUID
			for i := range 16 {
				id[i] = byte(v.Index(i).Uint())
			}
			if containsAny(id.String(), needles) {
				out = append(out, path+" = "+id.String())
			}
			return out
		}
		for i := range v.Len() {
			out = reflectHits(v.Index(i), fmt.Sprintf("%s[%d]", path, i), needles, seen, out)
		}
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			if s := string(v.Bytes()); containsAny(s, needles) {
				out = append(out, path+" = "+truncate(s))
			}
			return out
		}
		for i := range v.Len() {
			out = reflectHits(v.Index(i), fmt.Sprintf("%s[%d]", path, i), needles, seen, out)
		}
	case reflect.Pointer:
		if v.IsNil() || seen[v.Pointer()] {
			return out
		}
		seen[v.Pointer()] = true
		out = reflectHits(v.Elem(), path, needles, seen, out)
	case reflect.Interface:
		if !v.IsNil() {
			out = reflectHits(v.Elem(), path, needles, seen, out)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			out = reflectHits(v.Field(i), path+"."+v.Type().Field(i).Name, needles, seen, out)
		}
	case reflect.Map:
		iter := v.MapRange()
		for iter.Next() {
			out = reflectHits(iter.Key(), path+"{key}", needles, seen, out)
			out = reflectHits(iter.Value(), path+"{value}", needles, seen, out)
		}
	}
	return out
}

func containsAny(s string, needles []string) bool {
	s = strings.ToLower(s)
	for _, n := range needles {
		if strings.Contains(s, strings.ToLower(n)) {
			return true
		}
	}
	return false
}

func truncate(s string) string {
	if len(s) > 120 {
		return s[:120] + "…"
	}
	return s
}

// postgresHits reads every row of every table of the store's schema (the
// partitioned ones through their parent) in its text form, bytea columns
// as hex, and returns the tables where any needle appears, with counts.
func postgresHits(t *testing.T, db *postgres.DB, needles []string) []string {
	t.Helper()
	ctx := context.Background()
	rows, err := db.Pool().Query(ctx, `SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND NOT c.relispartition ORDER BY 1`)
	require.NoError(t, err)
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	var out []string
	for _, table := range tables {
		for _, n := range needles {
			var count int
			q := `SELECT count(*) FROM ` + pgx.Identifier{table}.Sanitize() + ` t WHERE strpos(lower(t::text), lower($1)) > 0`
			require.NoError(t, db.Pool().QueryRow(ctx, q, n).Scan(&count), table)
			if count > 0 {
				out = append(out, fmt.Sprintf("postgres %s: %d rows hold %q", table, count, n))
			}
		}
	}
	return out
}

// redisHits SCANs every key under prefix and reads every value of every
// type, returning the keys whose name or content holds a needle.
func redisHits(t *testing.T, rdb *goredis.Client, prefix string, needles []string) []string {
	t.Helper()
	ctx := context.Background()
	var out []string
	iter := rdb.Scan(ctx, 0, prefix+"*", 500).Iterator()
	for iter.Next(ctx) {
		key := iter.Val()
		var content any
		switch typ := rdb.Type(ctx, key).Val(); typ {
		case "string":
			content = rdb.Get(ctx, key).Val()
		case "stream":
			content = rdb.XRange(ctx, key, "-", "+").Val()
		case "hash":
			content = rdb.HGetAll(ctx, key).Val()
		case "set":
			content = rdb.SMembers(ctx, key).Val()
		case "zset":
			content = rdb.ZRange(ctx, key, 0, -1).Val()
		case "list":
			content = rdb.LRange(ctx, key, 0, -1).Val()
		default:
			content = typ
		}
		raw, _ := json.Marshal(content)
		if containsAny(key, needles) || containsAny(string(raw), needles) {
			out = append(out, "redis "+key+" = "+truncate(string(raw)))
		}
	}
	require.NoError(t, iter.Err())
	return out
}
