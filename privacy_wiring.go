package adshare

import (
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"time"

	"github.com/google/uuid"

	"github.com/adshare/adshare/adspace"
	"github.com/adshare/adshare/auth"
	"github.com/adshare/adshare/billing"
	"github.com/adshare/adshare/privacy"
)

// ViewerForgetter forgets a viewer's record at the ad server:
// decision/kevel's UserDB (Forget, Kevel UserDB forget) when Kevel
// decides. A user's erasure calls it with the user's pseudonymous viewer
// key.
type ViewerForgetter interface {
	Forget(ctx context.Context, userKey string) error
}

// sharedEraser is a Shared that can erase a user from what it holds
// (store/memory's and store/redis's can).
type sharedEraser interface {
	EraseUser(ctx context.Context, user uuid.UUID) error
}

// exportLimit caps each list of an export section gathered through the
// domain stores (sessions, audit entries, contents, payouts).
const exportLimit = 1000

// privacyConfig fills pc from the App's parts: the sections of an export
// and the steps of an erasure (see the README's "Data protection").
func (a *App) privacyConfig(c *Config, pc privacy.Config, ps privacy.Store, keys Keys) privacy.Config {
	setIfNil(&pc.Store, ps)
	setIfNil[privacy.Accounts](&pc.Accounts, a.auth)
	setIfNil(&pc.Audit, auth.AuditLog(c.Store))
	if pc.LinkKey == nil {
		m := hmac.New(sha256.New, keys.Refresh)
		m.Write([]byte("adshare export download links"))
		pc.LinkKey = m.Sum(nil)
	}
	if a.billing != nil {
		setIfNil[privacy.Payouts](&pc.Payouts, a.billing)
	}
	if pc.Now == nil {
		pc.Now = c.Now
	}
	pc.Logger = cmp.Or(pc.Logger, c.Logger)
	now := func() time.Time {
		if c.Now != nil {
			return c.Now()
		}
		return time.Now()
	}
	st := c.Store
	sections := []privacy.Section{
		{Name: "profile", Collect: func(ctx context.Context, u uuid.UUID) (any, error) { return st.UserByID(ctx, u) }},
		{Name: "sessions", Collect: func(ctx context.Context, u uuid.UUID) (any, error) { return st.UserSessions(ctx, u, now()) }},
		{Name: "identities", Collect: func(ctx context.Context, u uuid.UUID) (any, error) { return st.UserIdentities(ctx, u) }},
		{Name: "audit_by_user", Collect: func(ctx context.Context, u uuid.UUID) (any, error) {
			return st.AuditEvents(ctx, auth.AuditFilter{ActorID: u, Limit: exportLimit})
		}},
		{Name: "audit_about_user", Collect: func(ctx context.Context, u uuid.UUID) (any, error) {
			return st.AuditEvents(ctx, auth.AuditFilter{TargetID: u.String(), Limit: exportLimit})
		}},
		{Name: "ad_space", Collect: func(ctx context.Context, u uuid.UUID) (any, error) {
			sp, err := st.SpaceByOwner(ctx, u)
			if errors.Is(err, adspace.ErrSpaceNotFound) {
				return nil, nil
			}
			return sp, err
		}},
		{Name: "ad_content", Collect: func(ctx context.Context, u uuid.UUID) (any, error) {
			var all []adspace.Content
			f := adspace.ContentFilter{Limit: 200}
			for len(all) < exportLimit {
				page, err := st.AdvertiserContent(ctx, u, f)
				if err != nil || len(page) == 0 {
					return all, err
				}
				all = append(all, page...)
				f.After = page[len(page)-1].ID
			}
			return all, nil
		}},
	}
	if bs, ok := c.Store.(billing.Store); ok && a.billing != nil {
		sections = append(sections,
			privacy.Section{Name: "payee", Collect: func(ctx context.Context, u uuid.UUID) (any, error) {
				p, err := bs.Payee(ctx, u)
				if errors.Is(err, billing.ErrPayeeNotFound) {
					return nil, nil
				}
				return p, err
			}},
			privacy.Section{Name: "payouts", Collect: func(ctx context.Context, u uuid.UUID) (any, error) {
				return bs.Payouts(ctx, billing.PayoutFilter{Owner: u, Limit: 500})
			}},
			privacy.Section{Name: "holds", Collect: func(ctx context.Context, u uuid.UUID) (any, error) { return bs.Holds(ctx, u) }},
			privacy.Section{Name: "top_ups", Collect: func(ctx context.Context, u uuid.UUID) (any, error) {
				return bs.TopUpsSince(ctx, u, time.Time{})
			}},
		)
	}
	if cs, ok := c.Store.(auth.ConsentStore); ok {
		sections = append(sections, privacy.Section{Name: "consent_history", Collect: func(ctx context.Context, u uuid.UUID) (any, error) {
			return cs.ConsentHistory(ctx, u)
		}})
	}
	// The host's sections come after adshare's own.
	pc.Sections = append(sections, pc.Sections...)

	var steps []privacy.Step
	if c.ViewerForgetter != nil {
		steps = append(steps, privacy.Step{Name: "ad_server", Run: func(ctx context.Context, u uuid.UUID) error {
			return c.ViewerForgetter.Forget(ctx, a.spaces.ViewerKey(u))
		}})
	}
	if a.billing != nil {
		steps = append(steps, privacy.Step{Name: "processor", Run: a.billing.ClosePayee})
	}
	steps = append(steps, privacy.Step{Name: "caches", Run: a.spaces.ForgetUser})
	if se, ok := c.Shared.(sharedEraser); ok {
		steps = append(steps, privacy.Step{Name: "shared", Run: se.EraseUser})
	}
	pc.Steps = append(steps, pc.Steps...)
	return pc
}
