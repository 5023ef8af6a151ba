package postgres_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/auth"
	"github.com/adshare/adshare/store/postgres"
	"github.com/adshare/adshare/store/postgres/postgrestest"
	"github.com/adshare/adshare/store/storetest"
)

// BenchmarkUserByEmail is a login's lookup among 10,000 users, with the
// email sealed (found by its blind index, then opened) and in the clear.
func BenchmarkUserByEmail(b *testing.B) {
	for _, sealed := range []bool{true, false} {
		b.Run(map[bool]string{true: "sealed", false: "clear"}[sealed], func(b *testing.B) {
			ctx := context.Background()
			var db *postgres.DB
			if sealed {
				db = postgrestest.NewWithKeyring(b)
			} else {
				db = postgrestest.New(b)
			}
			const n = 10_000
			for i := range n {
				u := storetest.NewUser(b, fmt.Sprintf("bench.%d@example.com", i))
				u.Profile.DisplayName = fmt.Sprintf("Bench %d", i)
				require.NoError(b, db.CreateAccount(ctx, auth.NewAccount{User: u}))
			}
			b.ResetTimer()
			for i := range b.N {
				if _, err := db.UserByEmail(ctx, fmt.Sprintf("bench.%d@example.com", i%n)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
