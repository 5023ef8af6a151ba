package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// selfSigned writes a fresh self-signed certificate for 127.0.0.1 and its
// key to dir, and returns their paths and a pool that trusts it.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "adshare test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	require.NoError(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600))
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// Given a certificate the server speaks HTTPS only: TLS 1.2 at least,
// forward-secret AEAD suites only, and HSTS on every answer.
func TestServesTLS(t *testing.T) {
	t.Parallel()
	certFile, keyFile, pool := selfSigned(t, t.TempDir())
	base, _ := startServer(t, nil, "-tls-cert", certFile, "-tls-key", keyFile)
	require.True(t, strings.HasPrefix(base, "https://"), base)

	client := func(c *tls.Config) *http.Client {
		c.RootCAs = pool
		return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: c, ForceAttemptHTTP2: true}}
	}
	resp, err := client(&tls.Config{}).Get(base + "/healthz")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, uint16(tls.VersionTLS13), resp.TLS.Version)
	require.Equal(t, "HTTP/2.0", resp.Proto)
	hsts := resp.Header.Get("Strict-Transport-Security")
	require.Contains(t, hsts, "max-age=31536000", "HSTS is on with TLS")

	// TLS 1.2 works with a modern suite...
	resp, err = client(&tls.Config{MaxVersion: tls.VersionTLS12}).Get(base + "/healthz")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, uint16(tls.VersionTLS12), resp.TLS.Version)
	require.Contains(t, tlsCipherSuites, resp.TLS.CipherSuite)
	require.NotEmpty(t, resp.Header.Get("Strict-Transport-Security"))

	// ...but not with an old one, and nothing older than 1.2 at all.
	_, err = client(&tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA}}).Get(base + "/healthz")
	require.Error(t, err)
	_, err = client(&tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}).Get(base + "/healthz")
	require.Error(t, err)
	require.Contains(t, err.Error(), "protocol version")

	// Plain HTTP on the TLS port gets nothing useful.
	resp, err = http.Get("http://" + strings.TrimPrefix(base, "https://") + "/healthz")
	if err == nil {
		resp.Body.Close()
		require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	}
}

func TestTLSFlagsGoTogether(t *testing.T) {
	t.Parallel()
	_, _, err := parseConfig("server", []string{"-tls-cert", "x.pem"}, func(string) string { return "" }, &strings.Builder{})
	require.ErrorContains(t, err, "tls-cert and tls-key go together")
}
