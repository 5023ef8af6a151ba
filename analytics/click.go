package analytics

import (
	"context"
	"errors"
	"log/slog"
	"net/url"

	"github.com/adshare/adshare/analytics/tracking"
	"github.com/adshare/adshare/internal/errs"
)

// ErrNoDestination: the ad's click has nowhere to go.
var ErrNoDestination = errs.New(errs.NotFound, "no_destination", "this ad has no destination")

// Click records a click through our redirect link and returns where to
// send the viewer. A valid token's click is ingested like a reported one
// (once per token; invalid traffic is flagged, not billed). The viewer goes
// to the landing page the engine gave, or, for an ad server's ad, wherever
// its click URL redirects (fired now, without following the redirect).
// An expired token still sends the viewer on, without counting; a forged
// one is refused, and so is a link with nowhere safe to go (uncounted).
func (s *Service) Click(ctx context.Context, token string) (string, Result, error) {
	t, err := s.cfg.Sealer.Open(token)
	if err != nil && !errors.Is(err, tracking.ErrExpiredToken) {
		return "", Result{}, err
	}
	// With nowhere safe to send the viewer, count nothing: no advertiser
	// pays for a click that cannot reach them.
	if t.LandingURL != "" && !safeRedirect(t.LandingURL) ||
		t.LandingURL == "" && (t.Upstream.ClickURL == "" || s.cfg.Pixels == nil) {
		return "", Result{}, ErrNoDestination
	}
	var res Result
	if err == nil {
		results, err := s.Ingest(ctx, []Report{{Type: Click, Token: token}})
		if err != nil {
			return "", Result{}, err
		}
		res = results[0]
		if res.Status == Rejected {
			return "", res, res.Error
		}
	}
	target := t.LandingURL
	if t.Upstream.ClickURL != "" && s.cfg.Pixels != nil {
		// Fire the ad server's click only for a click we accepted as valid
		// on a billable showing (the ad server counts every fire); else
		// fire nothing and use the landing URL.
		if res.Status == Accepted && res.Valid && t.Billable {
			loc, ferr := s.cfg.Pixels.FireClick(ctx, t.Upstream.ClickURL)
			if ferr != nil {
				s.logger.WarnContext(ctx, "analytics: upstream click failed", slog.Any("error", ferr))
			} else if target == "" {
				target = loc
			}
		}
	}
	if !safeRedirect(target) {
		return "", res, ErrNoDestination
	}
	return target, res, nil
}

// safeRedirect accepts only absolute http(s) URLs with a host: never a
// javascript: or data: URL, nor a scheme-relative one.
func safeRedirect(target string) bool {
	u, err := url.Parse(target)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" && u.User == nil
}
