package keyring_test

import (
	"testing"

	"github.com/adshare/adshare/auth/keyring"
)

// benchPlain is the size of a connected-account id with some room.
var benchPlain = []byte("acct_1PlantedConnected9xQ2wE4rT")

func BenchmarkSeal(b *testing.B) {
	r := newRing(b, keyring.NewKey(), keyring.NewKey(), keyring.NewKey())
	b.ReportAllocs()
	b.SetBytes(int64(len(benchPlain)))
	for b.Loop() {
		if _, err := r.Seal(purpose, rowID, benchPlain); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpen(b *testing.B) {
	r := newRing(b, keyring.NewKey(), keyring.NewKey(), keyring.NewKey())
	sealed, err := r.Seal(purpose, rowID, benchPlain)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(benchPlain)))
	for b.Loop() {
		if _, err := r.Open(purpose, rowID, sealed); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkIndex(b *testing.B) {
	r := newRing(b, keyring.NewKey(), keyring.NewKey())
	b.ReportAllocs()
	for b.Loop() {
		r.Index("auth.email", []byte("ann@example.com"))
	}
}
