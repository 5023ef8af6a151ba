package auth

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
)

// KeySet holds the keys that sign and verify access tokens: one signing
// key, and any number of keys that only verify. Tokens are signed with
// EdDSA (Ed25519): deterministic signatures, no nonce to get wrong, small
// keys, and fast verification. Each key's id (the JWT `kid`) is its RFC 7638
// JWK thumbprint, so ids are stable and never collide.
//
// Rotation, without a token ever failing to verify:
//  1. publish: add the new public key as verify-only; wait until clients
//     and other instances have fetched the JWKS (its max-age);
//  2. switch: make the new key the signing key and keep the old one as
//     verify-only;
//  3. retire: once the longest access-token lifetime has passed, drop the
//     old key.
//
// Swap the set at runtime with Tokens.SetKeys.
type KeySet struct {
	signingID string
	signing   ed25519.PrivateKey
	verify    map[string]ed25519.PublicKey
	jwks      []byte
}

// NewKeySet returns a key set that signs with signing and verifies with it
// and with every key in verifyOnly.
func NewKeySet(signing ed25519.PrivateKey, verifyOnly ...ed25519.PublicKey) (*KeySet, error) {
	if len(signing) != ed25519.PrivateKeySize {
		return nil, errors.New("auth: the signing key must be an Ed25519 private key (see GenerateSigningKey)")
	}
	ks := &KeySet{signing: signing, verify: map[string]ed25519.PublicKey{}}
	pub := signing.Public().(ed25519.PublicKey)
	ks.signingID = KeyID(pub)
	ks.verify[ks.signingID] = pub
	for _, k := range verifyOnly {
		if len(k) != ed25519.PublicKeySize {
			return nil, errors.New("auth: every verify-only key must be an Ed25519 public key")
		}
		ks.verify[KeyID(k)] = k
	}
	var doc struct {
		Keys []map[string]string `json:"keys"`
	}
	// The signing key first, then the others in a stable order.
	ids := []string{ks.signingID}
	for _, k := range verifyOnly {
		if id := KeyID(k); id != ks.signingID {
			ids = append(ids, id)
		}
	}
	for _, id := range ids {
		doc.Keys = append(doc.Keys, map[string]string{
			"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": id,
			"x": base64.RawURLEncoding.EncodeToString(ks.verify[id]),
		})
	}
	var err error
	if ks.jwks, err = json.Marshal(doc); err != nil {
		return nil, fmt.Errorf("auth: encode JWKS: %w", err)
	}
	return ks, nil
}

// GenerateSigningKey returns a new random Ed25519 key.
func GenerateSigningKey() (ed25519.PrivateKey, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	return priv, err
}

// SigningKeyFromSeed returns the Ed25519 key for a 32-byte seed, the form
// in which hosts usually keep the key in a secret store.
func SigningKeyFromSeed(seed []byte) (ed25519.PrivateKey, error) {
	if len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("auth: an Ed25519 seed is %d bytes, got %d", ed25519.SeedSize, len(seed))
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

// KeyID returns the RFC 7638 JWK thumbprint of an Ed25519 public key,
// base64url-encoded.
func KeyID(pub ed25519.PublicKey) string {
	// The thumbprint input is the required members in lexicographic order.
	canonical := `{"crv":"Ed25519","kty":"OKP","x":"` + base64.RawURLEncoding.EncodeToString(pub) + `"}`
	sum := sha256.Sum256([]byte(canonical))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// SigningKeyID returns the id of the signing key.
func (ks *KeySet) SigningKeyID() string { return ks.signingID }

// JWKS returns the public keys as a JSON Web Key Set document (a copy).
func (ks *KeySet) JWKS() []byte { return append([]byte(nil), ks.jwks...) }

// publicKey returns the verification key with the given id. The id is
// untrusted input from a token header: it is only ever a map key here.
func (ks *KeySet) publicKey(kid string) (ed25519.PublicKey, bool) {
	k, ok := ks.verify[kid]
	return k, ok
}
