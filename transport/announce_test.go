package transport

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/auth"
	"github.com/adshare/adshare/transport/realtime"
)

// An administrator's announcement reaches every connected client, whoever
// they are, and is audited; anyone else, and anything invalid, sends
// nothing.
func TestAnnouncements(t *testing.T) {
	t.Parallel()
	for _, backend := range []string{backendMemory, backendPostgres} {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			b := newWSBundle(t, backend, wsOpts{})
			owner := b.register(t, "owner@example.com")
			other := b.register(t, "other@example.com")
			admin := b.promote(t, b.register(t, "admin@example.com"), auth.RoleAdmin)
			moderator := b.promote(t, b.register(t, "mod@example.com"), auth.RoleModerator)
			listeners := []*wsClient{b.dialAs(t, owner.AccessToken), b.dialAs(t, other.AccessToken)}
			var before realtime.Position
			for _, c := range listeners {
				before = c.subscribe(realtime.AlertsTopic, nil).Position
			}
			announce := func(token string, body any) reply {
				return b.send(t, request{method: http.MethodPost, path: "/admin/announcements", token: token, body: body})
			}
			for _, tc := range []struct {
				description string
				token       string
				status      int
				code        string
			}{
				{"Anonymous", "", http.StatusUnauthorized, "invalid_token"},
				{"AUser", owner.AccessToken, http.StatusForbidden, "forbidden"},
				{"AModerator", moderator.AccessToken, http.StatusForbidden, "forbidden"},
			} {
				t.Run(tc.description, func(t *testing.T) {
					announce(tc.token, map[string]string{"message": "Free money"}).problem(t, tc.status, tc.code)
				})
			}
			for _, tc := range []struct {
				description string
				body        any
				field       string
			}{
				{"NoMessage", map[string]string{"kind": "maintenance"}, "message"},
				{"Blank", map[string]string{"message": " \n "}, "message"},
				{"TooLong", map[string]string{"message": strings.Repeat("é", realtime.MaxAnnouncementLen+1)}, "message"},
				{"ControlCharacters", map[string]string{"message": "ring\x07ring"}, "message"},
				{"UnknownKind", map[string]string{"kind": "urgent!!", "message": "hi"}, "kind"},
			} {
				t.Run(tc.description, func(t *testing.T) {
					p := announce(admin.AccessToken, tc.body).problem(t, http.StatusUnprocessableEntity, "invalid_announcement")
					require.Len(t, p.Errors, 1)
					require.Equal(t, "#/"+tc.field, p.Errors[0].Pointer)
				})
			}
			t.Run("UnknownField", func(t *testing.T) {
				announce(admin.AccessToken, `{"message":"hi","to":"everyone"}`).problem(t, http.StatusUnprocessableEntity, "invalid_body")
			})

			var sent announcementJSON
			announce(admin.AccessToken, map[string]string{"kind": "maintenance", "message": "Payouts pause tonight.\nBack at 02:00."}).
				requireStatus(t, http.StatusAccepted).decode(t, &sent)
			require.Equal(t, "maintenance", sent.Kind)
			for _, c := range listeners { // the first message since subscribing: the refused attempts sent nothing
				env := c.read()
				require.Equal(t, realtime.TypeSystemAlert, env.Type)
				require.Equal(t, realtime.AlertsTopic, env.Topic)
				alert := payloadOf[realtime.AlertPayload](t, env)
				require.Equal(t, realtime.AlertPayload{Kind: "maintenance", Message: "Payouts pause tonight.\nBack at 02:00."}, alert)
			}
			late := b.dialAs(t, other.AccessToken) // a client that was away
			require.Equal(t, 1, late.subscribe(realtime.AlertsTopic, &before).Replayed)
			require.Equal(t, sent.Message, payloadOf[realtime.AlertPayload](t, late.expect(realtime.TypeSystemAlert)).Message,
				"kept in the topic's history for clients that come back")

			audited, err := b.audit.AuditEvents(context.Background(), auth.AuditFilter{Action: realtime.AuditAnnouncement})
			require.NoError(t, err)
			require.Len(t, audited, 1, "only the announcement that was sent")
			require.Equal(t, admin.User.ID, audited[0].ActorID)
			require.Equal(t, sent.ID.String(), audited[0].Details["announcement"])
		})
	}
}
