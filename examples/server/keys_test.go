package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/auth"
	"github.com/adshare/adshare/auth/keyring"
	"github.com/adshare/adshare/store/postgres"
	"github.com/adshare/adshare/store/storetest"
)

// TestKeysCommand rotates the data keys from the command line: a key to
// retire is refused while it seals a value (or while it seals new ones),
// keys rotate moves every value to the new key, and then the old one is
// reported unused; values of a key nobody configured are a failure.
func TestKeysCommand(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := migratedURL(t)
	index, keyA, keyB := keyring.NewKey(), keyring.NewKey(), keyring.NewKey()
	b64 := base64.StdEncoding.EncodeToString
	ringA, err := keyring.New(ctx, keyring.Keys{Data: [][]byte{keyA}, Index: index})
	require.NoError(t, err)
	ringB, err := keyring.New(ctx, keyring.Keys{Data: [][]byte{keyB}, Index: index})
	require.NoError(t, err)
	idA, idB := ringA.SealingKeyID(), ringB.SealingKeyID()

	db, err := postgres.Open(ctx, url, &postgres.Config{Keyring: ringA})
	require.NoError(t, err)
	u := storetest.NewUser(t, "keys.command@example.com")
	u.Profile.DisplayName = "Key Holder"
	require.NoError(t, db.CreateAccount(ctx, auth.NewAccount{User: u}))
	require.NoError(t, db.Stop(ctx))

	keys := func(dataKeys string, args ...string) (string, error) {
		env := map[string]string{"DATABASE_URL": url, "ADSHARE_DATA_KEYS": dataKeys, "ADSHARE_DATA_INDEX_KEY": b64(index)}
		var out bytes.Buffer
		err := run(ctx, append([]string{"server", "keys"}, args...), func(k string) string { return env[k] }, &out)
		return out.String(), err
	}

	out, err := keys(b64(keyA), "status", "-retire", idA)
	require.ErrorContains(t, err, "seals new values", out)
	require.Contains(t, out, idA)

	both := b64(keyB) + "," + b64(keyA)
	out, err = keys(both, "status", "-retire", idA)
	require.ErrorContains(t, err, "still seals 2 value(s)", out)

	out, err = keys(both, "rotate", "-batch", "1")
	require.NoError(t, err, out)
	require.Contains(t, out, "re-encrypted 1 row(s) under key "+idB)

	out, err = keys(both, "status", "-retire", idA)
	require.NoError(t, err, out)
	require.Contains(t, out, "key "+idA+" is used by no stored value")

	out, err = keys(b64(keyB), "status")
	require.NoError(t, err, out)
	require.Regexp(t, `key `+idB+` +2 value\(s\) +seals new values`, out)

	other := keyring.NewKey()
	out, err = keys(b64(other), "status")
	require.ErrorContains(t, err, "key "+idB+" seals 2 value(s) but is not configured", out)

	var none bytes.Buffer
	err = run(ctx, []string{"server", "keys", "status"}, func(k string) string { return map[string]string{"DATABASE_URL": url}[k] }, &none)
	require.ErrorContains(t, err, "ADSHARE_DATA_KEYS")
}
