package billing_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/auth"
	"github.com/adshare/adshare/auth/keyring"
	"github.com/adshare/adshare/billing"
	"github.com/adshare/adshare/internal/jobs"
	"github.com/adshare/adshare/internal/testenv"
	"github.com/adshare/adshare/store/postgres"
	"github.com/adshare/adshare/store/postgres/postgrestest"
)

// crashChildEnv, when set, makes the test binary a payout worker (see
// crashChild) instead of running tests: the process the crash test kills.
const crashChildEnv = "ADSHARE_BILLING_CRASH_CHILD"

func TestMain(m *testing.M) {
	if spec := os.Getenv(crashChildEnv); spec != "" {
		os.Exit(crashChild(spec))
	}
	os.Exit(m.Run())
}

// childSpec is what a payout worker is told: the database, its keys, the
// processor's bridge, the payout to run, and the time it is.
type childSpec struct {
	DatabaseURL string    `json:"database_url"`
	DataKey     string    `json:"data_key"`
	IndexKey    string    `json:"index_key"`
	Bridge      string    `json:"bridge"`
	Payout      uuid.UUID `json:"payout"`
	Now         time.Time `json:"now"`
}

// crashChild runs one payout's job against PostgreSQL, with the processor
// in the parent process (so that what the processor did survives the
// child's death), and exits 0 when the job succeeded.
func crashChild(raw string) int {
	var spec childSpec
	if err := json.Unmarshal([]byte(raw), &spec); err != nil {
		fmt.Fprintln(os.Stderr, "crash child: spec:", err)
		return 2
	}
	ctx := context.Background()
	data, _ := base64.StdEncoding.DecodeString(spec.DataKey)
	index, _ := base64.StdEncoding.DecodeString(spec.IndexKey)
	ring, err := keyring.New(ctx, keyring.Keys{Data: [][]byte{data}, Index: index})
	if err != nil {
		fmt.Fprintln(os.Stderr, "crash child: keyring:", err)
		return 2
	}
	db, err := postgres.Open(ctx, spec.DatabaseURL, &postgres.Config{Keyring: ring})
	if err != nil {
		fmt.Fprintln(os.Stderr, "crash child: open:", err)
		return 2
	}
	defer db.Stop(ctx)
	now := func() time.Time { return spec.Now }
	authz, err := auth.NewAuthorizer(nil, db, nil, now)
	if err != nil {
		fmt.Fprintln(os.Stderr, "crash child: authorizer:", err)
		return 2
	}
	q, err := jobs.NewLocal(nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "crash child: jobs:", err)
		return 2
	}
	svc, err := billing.NewService(billing.Config{Store: db, Jobs: q, Auth: authz, Tiers: tiers{proTier}, Audit: db, Now: now,
		Processor:           bridgeProcessor{url: spec.Bridge},
		OnboardingReturnURL: "https://app.example/payouts/done", OnboardingRefreshURL: "https://app.example/payouts/again"})
	if err != nil {
		fmt.Fprintln(os.Stderr, "crash child: service:", err)
		return 2
	}
	if err := svc.RunPayoutJob(ctx, spec.Payout); err != nil {
		fmt.Fprintln(os.Stderr, "crash child: payout:", err)
		return 3
	}
	return 0
}

// bridgeProcessor is the child's processor: the two calls a payout makes,
// sent to the parent's stateful fake over HTTP. The other calls are not
// made by a payout job.
type bridgeProcessor struct {
	billing.Processor
	url string
}

type bridgeAnswer struct {
	Transfer  billing.Transfer   `json:"transfer"`
	Transfers []billing.Transfer `json:"transfers"`
	Error     *struct {
		Definite bool   `json:"definite"`
		Code     string `json:"code"`
	} `json:"error"`
}

func (p bridgeProcessor) call(ctx context.Context, path string, body any) (bridgeAnswer, error) {
	raw, err := json.Marshal(body)
	if err != nil {
		return bridgeAnswer{}, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url+path, bytes.NewReader(raw))
	if err != nil {
		return bridgeAnswer{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return bridgeAnswer{}, &billing.ProcessorError{Code: "network", Message: err.Error()}
	}
	defer resp.Body.Close()
	var a bridgeAnswer
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
		return bridgeAnswer{}, &billing.ProcessorError{Code: "bad_answer", Message: err.Error()}
	}
	if a.Error != nil {
		return a, &billing.ProcessorError{Definite: a.Error.Definite, Code: a.Error.Code, Message: "from the fake"}
	}
	return a, nil
}

// Transfer implements billing.Processor.
func (p bridgeProcessor) Transfer(ctx context.Context, r billing.TransferRequest) (billing.Transfer, error) {
	a, err := p.call(ctx, "/transfer", r)
	return a.Transfer, err
}

// TransfersInGroup implements billing.Processor.
func (p bridgeProcessor) TransfersInGroup(ctx context.Context, group string) ([]billing.Transfer, error) {
	a, err := p.call(ctx, "/group", group)
	return a.Transfers, err
}

// killPoint says when the bridge kills the worker that calls Transfer.
type killPoint int

const (
	killNever          killPoint = iota
	killBeforeTransfer           // the payout is saved; the processor never hears of it
	killAfterTransfer            // the processor made the transfer; the worker never hears back
)

// bridge serves the fake processor to workers and kills them on cue.
type bridge struct {
	b *bundle

	mu    sync.Mutex
	kill  killPoint
	child *exec.Cmd
}

func (br *bridge) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var a bridgeAnswer
	var err error
	switch r.URL.Path {
	case "/transfer":
		var req billing.TransferRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		br.mu.Lock()
		kill, child := br.kill, br.child
		br.mu.Unlock()
		if kill == killBeforeTransfer {
			_ = child.Process.Signal(syscall.SIGKILL)
			return
		}
		a.Transfer, err = br.b.proc.Transfer(r.Context(), req)
		if kill == killAfterTransfer {
			_ = child.Process.Signal(syscall.SIGKILL)
			return
		}
	case "/group":
		var group string
		if err := json.NewDecoder(r.Body).Decode(&group); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		a.Transfers, err = br.b.proc.TransfersInGroup(r.Context(), group)
	default:
		http.NotFound(w, r)
		return
	}
	if err != nil {
		var pe *billing.ProcessorError
		definite := errors.As(err, &pe) && pe.Definite
		code := "unknown"
		if pe != nil {
			code = pe.Code
		}
		a.Error = &struct {
			Definite bool   `json:"definite"`
			Code     string `json:"code"`
		}{definite, code}
	}
	_ = json.NewEncoder(w).Encode(a)
}

// runWorker runs a payout worker for po and returns how it ended: killed,
// or its exit code.
func (br *bridge) runWorker(t *testing.T, spec childSpec, kill killPoint) (killed bool, code int) {
	t.Helper()
	raw, err := json.Marshal(spec)
	require.NoError(t, err)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+string(raw))
	out := &testenv.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	br.mu.Lock()
	br.kill, br.child = kill, cmd
	require.NoError(t, cmd.Start())
	br.mu.Unlock()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("the payout worker did not end within a minute:\n%s", out.String())
	}
	ws := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if ws.Signaled() {
		require.Equal(t, syscall.SIGKILL, ws.Signal())
		return true, -1
	}
	return false, ws.ExitStatus()
}

// No payout twice: the worker is SIGKILLed after the payout was saved and
// before the processor was called, then after the processor made the
// transfer and before the answer was posted; each time it runs again from
// what PostgreSQL kept, and in the end exactly one transfer exists, the
// payout is paid once, the ledger balances and nothing is left in transit.
// Past the processor's key window the group is looked up, never sent anew.
func TestNoPayoutTwiceWhenTheWorkerIsKilled(t *testing.T) {
	t.Parallel()
	url := postgrestest.URL(t)
	data, index := keyring.NewKey(), keyring.NewKey()
	ctx := context.Background()
	ring, err := keyring.New(ctx, keyring.Keys{Data: [][]byte{data}, Index: index})
	require.NoError(t, err)
	db, err := postgres.Open(ctx, url, &postgres.Config{Keyring: ring})
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Stop(context.Background()) })
	_, err = db.Migrate(ctx)
	require.NoError(t, err)

	b := setupOn(t, db, false)
	br := &bridge{b: b}
	srv := httptest.NewServer(br)
	t.Cleanup(srv.Close)
	spec := func(po billing.Payout) childSpec {
		return childSpec{DatabaseURL: url, DataKey: base64.StdEncoding.EncodeToString(data),
			IndexKey: base64.StdEncoding.EncodeToString(index), Bridge: srv.URL, Payout: po.ID, Now: b.clock.Now()}
	}
	transfers := func(po billing.Payout) []billing.Transfer {
		t.Helper()
		got, err := b.proc.TransfersInGroup(ctx, po.ID.String())
		require.NoError(t, err)
		return got
	}
	requirePaidOnce := func(po billing.Payout) {
		t.Helper()
		require.Len(t, transfers(po), 1, "exactly one transfer")
		got, err := db.Payout(ctx, po.ID)
		require.NoError(t, err)
		require.Equal(t, billing.PayoutPaid, got.Status)
		require.Equal(t, transfers(po)[0].ID, got.TransferID)
		owner := b.balances(t, b.owner.UserID)
		require.Zero(t, owner.InTransit, "nothing left in transit")
		b.requireBalanced(t)
	}

	po := b.readyPayout(t)
	killed, _ := br.runWorker(t, spec(po), killBeforeTransfer)
	require.True(t, killed)
	require.Empty(t, transfers(po), "killed before the processor heard of it")
	got, err := db.Payout(ctx, po.ID)
	require.NoError(t, err)
	require.Equal(t, billing.PayoutPending, got.Status, "the saved payout survived")
	require.Equal(t, 1, got.Attempts)

	killed, _ = br.runWorker(t, spec(po), killAfterTransfer)
	require.True(t, killed)
	require.Len(t, transfers(po), 1, "the processor made the transfer")
	got, err = db.Payout(ctx, po.ID)
	require.NoError(t, err)
	require.Equal(t, billing.PayoutPending, got.Status, "the worker died before posting it")

	killed, code := br.runWorker(t, spec(po), killNever)
	require.False(t, killed)
	require.Zero(t, code)
	requirePaidOnce(po)
	killed, code = br.runWorker(t, spec(po), killNever)
	require.False(t, killed)
	require.Zero(t, code, "a paid payout's job is a no-op")
	requirePaidOnce(po)

	// Past the processor's 24 h key window a resent transfer would be a
	// new one: the worker looks the group up instead.
	po2 := b.readyPayoutAgain(t)
	killed, _ = br.runWorker(t, spec(po2), killAfterTransfer)
	require.True(t, killed)
	b.clock.Set(b.clock.Now().Add(25 * time.Hour))
	killed, code = br.runWorker(t, spec(po2), killBeforeTransfer)
	require.False(t, killed, "the transfer was found in its group: nothing was sent")
	require.Zero(t, code)
	requirePaidOnce(po2)
}
