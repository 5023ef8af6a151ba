package auth_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/adshare/adshare/auth"
	"github.com/adshare/adshare/store/memory"
)

// newService assembles the auth service on in-memory stores, as a host
// does with its own (store/postgres and store/redis in production).
func newService() *auth.Service {
	key, err := auth.GenerateSigningKey() // production: auth.SigningKeyFromSeed(a kept seed)
	if err != nil {
		panic(err)
	}
	keys, err := auth.NewKeySet(key)
	if err != nil {
		panic(err)
	}
	tokens, err := auth.NewTokens(keys, auth.TokenConfig{Issuer: "https://api.example.com"})
	if err != nil {
		panic(err)
	}
	store := memory.New()
	svc, err := auth.NewService(auth.Config{
		Users: store, Sessions: store, Identities: store, Audit: store,
		Limiter: memory.NewLimiter(), Revocations: memory.NewRevocationList(), OneTime: memory.NewOneTimeStore(),
		Tokens:     tokens,
		RefreshKey: bytes.Repeat([]byte{7}, 32), // production: a secret shared by every instance
		// Every second use of a refresh token revokes its session at
		// once (by default a short grace window forgives a retry).
		RefreshGrace: -1,
	})
	if err != nil {
		panic(err)
	}
	return svc
}

// A user registers, is identified by the access token, refreshes (each
// refresh token works once: the second use ends the session), and signs in
// with their password.
func ExampleService() {
	svc := newService()
	ctx := context.Background()

	user, pair, err := svc.Register(ctx, auth.Registration{Email: "Ada@Example.com", Password: "a long enough passphrase"})
	if err != nil {
		panic(err)
	}
	p, err := svc.Authenticate(ctx, pair.AccessToken)
	if err != nil {
		panic(err)
	}
	fmt.Println(user.Email, p.UserID == user.ID, p.Role)

	next, err := svc.Refresh(ctx, pair.RefreshToken)
	if err != nil {
		panic(err)
	}
	fmt.Println("rotated:", next.RefreshToken != pair.RefreshToken)
	_, err = svc.Refresh(ctx, pair.RefreshToken) // replayed: a stolen copy, or a bug
	fmt.Println("replay refused:", errors.Is(err, auth.ErrInvalidGrant))
	_, err = svc.Refresh(ctx, next.RefreshToken)
	fmt.Println("session ended:", err != nil)

	_, _, err = svc.Login(ctx, "ada@example.com", "not the passphrase")
	fmt.Println(errors.Is(err, auth.ErrInvalidCredentials))
	_, _, err = svc.Login(ctx, "ada@example.com", "a long enough passphrase")
	fmt.Println(err)
	// Output:
	// ada@example.com true user
	// rotated: true
	// replay refused: true
	// session ended: true
	// true
	// <nil>
}

// Logout revokes the session: its access tokens stop working at once, on
// every instance sharing the revocation list.
func ExampleService_Logout() {
	svc := newService()
	ctx := context.Background()
	_, pair, err := svc.Register(ctx, auth.Registration{Email: "bo@example.com", Password: "a long enough passphrase"})
	if err != nil {
		panic(err)
	}
	p, err := svc.Authenticate(ctx, pair.AccessToken)
	if err != nil {
		panic(err)
	}
	if err := svc.Logout(ctx, p); err != nil {
		panic(err)
	}
	_, err = svc.Authenticate(ctx, pair.AccessToken)
	fmt.Println(errors.Is(err, auth.ErrTokenRevoked))
	// Output: true
}

// Authorize checks a permission of the principal's role: a new user may
// manage their own space but not moderate content.
func ExampleService_Authorize() {
	svc := newService()
	ctx := context.Background()
	_, pair, err := svc.Register(ctx, auth.Registration{Email: "cy@example.com", Password: "a long enough passphrase"})
	if err != nil {
		panic(err)
	}
	p, err := svc.Authenticate(ctx, pair.AccessToken)
	if err != nil {
		panic(err)
	}
	fmt.Println(svc.Authorize(ctx, p, auth.PermAdSpace))
	err = svc.Authorize(ctx, p, auth.PermContentModerate)
	fmt.Println(errors.Is(err, auth.ErrForbidden))
	// Output:
	// <nil>
	// true
}
