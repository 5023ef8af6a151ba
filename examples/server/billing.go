package main

import (
	"cmp"
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/adshare/adshare"
	"github.com/adshare/adshare/billing"
	"github.com/adshare/adshare/billing/stripe"
	"github.com/adshare/adshare/store/postgres"
)

// resealEvery is how often the servers run the re-encryption job.
const resealEvery = 24 * time.Hour

// setBilling sets c's money: Stripe when a key is configured (manual
// otherwise), and River's durable jobs when the store is PostgreSQL (the
// in-process runner otherwise).
func setBilling(ctx context.Context, cfg config, logger *slog.Logger, reg prometheus.Registerer, c *adshare.Config) error {
	b := cfg.billing
	c.Billing = billing.Config{
		LiveMode: b.liveMode, HoldWindow: b.holdWindow,
		OnboardingReturnURL: b.returnURL, OnboardingRefreshURL: b.refreshURL,
	}
	if db, ok := c.Store.(*postgres.DB); ok {
		q, err := db.Jobs(&postgres.JobsConfig{Logger: logger})
		if err != nil {
			return err
		}
		c.Jobs = q
		logger.InfoContext(ctx, "jobs: durable, on PostgreSQL (River)")
		if db.Keyring() != nil {
			// After a key rotation, old values move to the new key
			// within a day (or at once: keys rotate).
			if err := db.RegisterResealJob(q); err != nil {
				return err
			}
			if err := q.Every(postgres.ResealJobKind, resealEvery, struct{}{}); err != nil {
				return err
			}
		}
	}
	if b.stripeKey == "" {
		logger.InfoContext(ctx, "billing: no ADSHARE_STRIPE_SECRET_KEY; top-ups are confirmed and payouts recorded by an admin")
		return nil
	}
	client, err := stripe.New(stripe.Config{SecretKey: b.stripeKey, BaseURL: b.stripeURL, Logger: logger, Metrics: reg})
	if err != nil {
		return err
	}
	hooks, err := stripe.NewWebhooks(stripe.WebhooksConfig{Secrets: b.webhookSecrets})
	if err != nil {
		return err
	}
	c.Billing.Processor, c.Billing.Events = client, hooks
	logger.InfoContext(ctx, "billing: Stripe", slog.Bool("live", b.liveMode), slog.String("api", cmp.Or(b.stripeURL, stripe.DefaultBaseURL)))
	return nil
}
