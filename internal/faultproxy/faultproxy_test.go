package faultproxy_test

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/internal/faultproxy"
)

// echo starts a TCP echo server on loopback.
func echo(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
	return ln.Addr().String()
}

func start(t *testing.T) *faultproxy.Proxy {
	t.Helper()
	p, err := faultproxy.Start(echo(t))
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func dial(t *testing.T, p *faultproxy.Proxy) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", p.Addr())
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// roundTrip writes msg and reads it back, within d.
func roundTrip(c net.Conn, msg []byte, d time.Duration) ([]byte, error) {
	_ = c.SetDeadline(time.Now().Add(d))
	if _, err := c.Write(msg); err != nil {
		return nil, err
	}
	got := make([]byte, len(msg))
	_, err := io.ReadFull(c, got)
	return got, err
}

func TestForwardsBothWays(t *testing.T) {
	t.Parallel()
	p := start(t)
	c := dial(t, p)
	msg := bytes.Repeat([]byte("adshare "), 20_000) // 160 kB, several chunks
	got, err := roundTrip(c, msg, 5*time.Second)
	require.NoError(t, err)
	require.Equal(t, msg, got)
	require.EqualValues(t, 1, p.Accepted())
	require.Equal(t, "none", faultproxy.Fault{}.String())
}

func TestLatencyReachesOpenConnections(t *testing.T) {
	t.Parallel()
	p := start(t)
	c := dial(t, p)
	_, err := roundTrip(c, []byte("warm"), time.Second)
	require.NoError(t, err)

	p.Set(faultproxy.Fault{Latency: 100 * time.Millisecond})
	began := time.Now()
	got, err := roundTrip(c, []byte("slow"), 5*time.Second)
	require.NoError(t, err)
	require.Equal(t, "slow", string(got))
	require.GreaterOrEqual(t, time.Since(began), 200*time.Millisecond, "100 ms each way on a connection opened before the fault")

	p.Clear()
	began = time.Now()
	_, err = roundTrip(c, []byte("fast"), time.Second)
	require.NoError(t, err)
	require.Less(t, time.Since(began), 150*time.Millisecond, "cleared")
}

func TestBandwidthLimit(t *testing.T) {
	t.Parallel()
	p := start(t)
	p.Set(faultproxy.Fault{BytesPerSecond: 100_000})
	c := dial(t, p)
	msg := bytes.Repeat([]byte{'x'}, 20_000)
	began := time.Now()
	got, err := roundTrip(c, msg, 10*time.Second)
	require.NoError(t, err)
	require.Equal(t, msg, got)
	// 20 kB at 100 kB/s takes 0.2 s in each direction (the two overlap:
	// the echo starts answering with the first tenth).
	require.GreaterOrEqual(t, time.Since(began), 190*time.Millisecond)
	require.Equal(t, "100000 B/s", faultproxy.Fault{BytesPerSecond: 100_000}.String())
}

func TestResetCutsOpenConnections(t *testing.T) {
	t.Parallel()
	p := start(t)
	c := dial(t, p)
	_, err := roundTrip(c, []byte("hi"), time.Second)
	require.NoError(t, err)
	p.Reset()
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	_, err = c.Read(make([]byte, 1))
	require.Error(t, err)
	require.True(t, errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF), "reset, not a timeout: %v", err)
	require.False(t, errors.Is(err, os.ErrDeadlineExceeded))

	// New connections still work.
	_, err = roundTrip(dial(t, p), []byte("again"), time.Second)
	require.NoError(t, err)
}

func TestDownRefusesThenUpOnTheSameAddress(t *testing.T) {
	t.Parallel()
	p := start(t)
	open := dial(t, p)
	_, err := roundTrip(open, []byte("hi"), time.Second)
	require.NoError(t, err)

	p.Down()
	_, err = net.DialTimeout("tcp", p.Addr(), time.Second)
	require.ErrorIs(t, err, syscall.ECONNREFUSED, "down: refused")
	_, err = roundTrip(open, []byte("x"), time.Second)
	require.Error(t, err, "an open connection is cut")
	require.Eventually(t, func() bool { return p.Open() == 0 }, time.Second, 10*time.Millisecond)

	require.NoError(t, p.Up())
	got, err := roundTrip(dial(t, p), []byte("back"), time.Second)
	require.NoError(t, err)
	require.Equal(t, "back", string(got))
}

func TestHalfOpenHoldsTrafficWithoutClosing(t *testing.T) {
	t.Parallel()
	p := start(t)
	c := dial(t, p)
	p.Set(faultproxy.Fault{HalfOpen: true})
	require.Equal(t, "half-open", faultproxy.Fault{HalfOpen: true}.String())
	_, err := roundTrip(c, []byte("held"), 300*time.Millisecond)
	require.ErrorIs(t, err, os.ErrDeadlineExceeded, "nothing comes back, nothing is closed")

	// New connections are accepted (the dial succeeds) and held too.
	fresh := dial(t, p)
	_, err = roundTrip(fresh, []byte("new"), 300*time.Millisecond)
	require.ErrorIs(t, err, os.ErrDeadlineExceeded)

	p.Clear()
	_ = fresh.SetDeadline(time.Now().Add(2 * time.Second))
	got := make([]byte, 3)
	_, err = io.ReadFull(fresh, got)
	require.NoError(t, err)
	require.Equal(t, "new", string(got), "the held bytes are delivered when the fault ends")
}
