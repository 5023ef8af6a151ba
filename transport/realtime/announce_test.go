package realtime_test

import (
	"context"
	"errors"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/auth"
	"github.com/adshare/adshare/internal/errs"
	"github.com/adshare/adshare/store/memory"
	"github.com/adshare/adshare/transport/realtime"
)

// downBroker is a broker that does not answer.
type downBroker struct{ realtime.Broker }

func (downBroker) Publish(context.Context, string, []byte, realtime.PublishOptions) (realtime.Position, error) {
	return realtime.Position{}, errors.New("connection refused")
}

type allowAll struct{}

func (allowAll) Authorize(context.Context, auth.Principal, auth.Permission) error { return nil }

// A broker that does not take the announcement is an Unavailable error,
// and the attempt is audited as failed.
func TestAnnouncementWhenTheBrokerIsDown(t *testing.T) {
	t.Parallel()
	store := memory.New()
	a, err := realtime.NewAnnouncer(realtime.NewPublisher(downBroker{}, nil), allowAll{}, store)
	require.NoError(t, err)
	admin := auth.Principal{UserID: uuid.New(), Role: auth.RoleAdmin}
	_, err = a.Announce(context.Background(), admin, "", "Back soon")
	require.ErrorIs(t, err, realtime.ErrAnnouncementNotSent)
	var e *errs.Error
	require.ErrorAs(t, err, &e)
	require.Equal(t, errs.Unavailable, e.Kind)

	audited, err := store.AuditEvents(context.Background(), auth.AuditFilter{Action: realtime.AuditAnnouncement})
	require.NoError(t, err)
	require.Len(t, audited, 1)
	require.Equal(t, auth.OutcomeFailure, audited[0].Outcome)
	require.Equal(t, "announcement", audited[0].Details["kind"], "the default kind")
}
