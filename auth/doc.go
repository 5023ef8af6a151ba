// Package auth holds adshare's users and what they may do: accounts, roles,
// tiers and the storage interfaces behind them.
//
// The package is a domain package: it declares types, the interfaces it needs
// from storage ([UserStore]) and its errors, and imports no adapter. The
// implementations live in store/memory and store/postgres; the HTTP handlers
// in transport.
//
// Errors are sentinels such as [ErrUserNotFound] and [ErrEmailTaken]; compare
// with errors.Is. Validation failures match [ErrInvalidUser] and carry
// field-level messages.
package auth
