package keyring_test

import (
	"context"
	"fmt"

	"github.com/adshare/adshare/auth/keyring"
)

// A host reads its keys from its own configuration (here, literals) and
// rotates by putting a new key first.
func Example() {
	ctx := context.Background()
	src := keyring.StaticKeys{
		Data:  []keyring.Secret{"IiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiI="},
		Index: "ERERERERERERERERERERERERERERERERERERERERERE=",
	}
	ring, err := keyring.New(ctx, src)
	if err != nil {
		fmt.Println(err)
		return
	}
	// The row's id binds the value to its row; the purpose to its column.
	owner := "0192f5a4-7c1e-7b9a-8c3d-4e5f60718293"
	sealed, _ := ring.SealString("billing.connected_account", owner, "acct_1Planted")
	byKey, _ := keyring.KeyID(sealed)
	fmt.Println(len(sealed)-keyring.Overhead, "bytes sealed by key", byKey)

	plain, _ := ring.OpenString("billing.connected_account", owner, sealed)
	fmt.Println(plain)
	_, err = ring.OpenString("billing.payout_details", owner, sealed)
	fmt.Println(err)

	// Rotation: the new key seals, the old one still opens.
	src.Data = append([]keyring.Secret{"MzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzM="}, src.Data...)
	rotated, _ := keyring.New(ctx, src)
	plain, _ = rotated.OpenString("billing.connected_account", owner, sealed)
	fmt.Println(plain, "still opens; new values are sealed by", rotated.SealingKeyID())
	// Output:
	// 13 bytes sealed by key 967be1863db00dbc
	// acct_1Planted
	// the sealed value belongs to another purpose
	// acct_1Planted still opens; new values are sealed by c95621273649448d
}
