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

// maxDestinations bounds the remembered click destinations of an ad
// server's ads (one entry per ad and creative); the map is emptied when
// full, so it costs a few hundred kilobytes at most.
const maxDestinations = 4096

// destKey names one ad server ad's creative, whose click-through
// destination is the same for every showing.
type destKey struct{ source, ad, creative string }

// Click records a click through our redirect link and returns where to
// send the viewer. A valid token's click is ingested like a reported one
// (once per token; invalid traffic is flagged, not billed). The viewer goes
// to the landing page the engine gave, or, for an ad server's ad, wherever
// its click URL redirects (fired now, without following the redirect).
// An expired token still sends the viewer on, without counting; a forged
// one is refused, and so is a link with nowhere safe to go (uncounted).
//
// An ad server's ad (Kevel) has no landing page of its own: only firing
// its click URL tells where it leads. A click we count as valid and
// billable fires it and remembers the destination per creative. A click
// we do not count (a duplicate, invalid traffic, a non-billable showing,
// an expired token) goes to the remembered destination; when none is
// known it fires the click URL after all, to send the viewer on rather
// than strand a person on an error page: the ad server then applies its
// own invalid-traffic rules, and the click still earns the owner nothing
// here.
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
		results, err := s.Ingest(ctx, []Report{{Type: Click, Token: token, redirect: true}})
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
		key := destKey{t.Source, t.AdID, t.CreativeID}
		fired := false
		// Fire the ad server's click for a click we accepted as valid on a
		// billable showing (the ad server counts every fire); else fire
		// nothing if the landing page or the destination is known.
		if res.Status == Accepted && res.Valid && t.Billable {
			fired = true
			if loc := s.fireClick(ctx, t.Upstream.ClickURL, key); target == "" {
				target = loc
			}
		}
		if target == "" {
			target = s.destination(key)
		}
		if target == "" && !fired {
			target = s.fireClick(ctx, t.Upstream.ClickURL, key)
		}
	}
	if !safeRedirect(target) {
		return "", res, ErrNoDestination
	}
	return target, res, nil
}

// fireClick fires an ad server's click URL and returns where it leads,
// remembering a safe destination under key; "" when it failed.
func (s *Service) fireClick(ctx context.Context, clickURL string, key destKey) string {
	loc, err := s.cfg.Pixels.FireClick(ctx, clickURL)
	if err != nil {
		s.logger.WarnContext(ctx, "analytics: upstream click failed", slog.Any("error", err))
		return ""
	}
	if safeRedirect(loc) {
		s.destsMu.Lock()
		if len(s.dests) >= maxDestinations {
			clear(s.dests)
		}
		s.dests[key] = loc
		s.destsMu.Unlock()
	}
	return loc
}

// destination is where key's clicks were last seen to lead, or "".
func (s *Service) destination(key destKey) string {
	s.destsMu.Lock()
	defer s.destsMu.Unlock()
	return s.dests[key]
}

// safeRedirect accepts only absolute http(s) URLs with a host: never a
// javascript: or data: URL, nor a scheme-relative one.
func safeRedirect(target string) bool {
	u, err := url.Parse(target)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" && u.User == nil
}
