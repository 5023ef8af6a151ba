// Package adspace holds the ad space that every user owns: its settings and
// the storage interface behind them.
//
// A [Space] belongs to exactly one user (its owner) and is keyed by the
// owner's id. Settings are validated by [Settings.Validate] before any store
// sees them; stores enforce the same rules again with constraints.
package adspace
