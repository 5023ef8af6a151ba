package realtime_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/transport/realtime"
)

func TestReconnect(t *testing.T) {
	t.Parallel()
	for code, want := range map[int]bool{
		1000: true, 1001: true, 1006: true, 1011: true, // the standard's, but for policy and size
		1008: false, 1009: false,
		realtime.CloseShutdown: true, realtime.CloseTokenExpired: true, realtime.CloseSlow: true,
		realtime.CloseNoPong: true, realtime.CloseTooManyRequests: true, realtime.ClosePermissionsChanged: true,
		realtime.CloseUnauthorized: false, realtime.CloseSessionRevoked: false, realtime.CloseBadRequest: false,
		realtime.CloseConnectionLimit: false, realtime.CloseAuthTimeout: false, 4999: false, 4499: true,
	} {
		require.Equal(t, want, realtime.Reconnect(code), "code %d", code)
	}
}

func TestDecodeClientMessage(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		description string
		msg         string
		code        string // "" when valid
	}{
		{"Ping", `{"v":1,"type":"ping","id":"p1"}`, ""},
		{"SubscribeWithSince", `{"v":1,"type":"subscribe","payload":{"topics":[{"topic":"alerts","since":{"seq":3,"epoch":"e"}}]}}`, ""},
		{"NotJSON", `hello`, "bad_json"},
		{"TwoObjects", `{"v":1,"type":"ping"}{"v":1,"type":"ping"}`, "bad_json"},
		{"UnknownField", `{"v":1,"type":"ping","token":"x"}`, "bad_json"},
		{"InvalidUTF8", "{\"v\":1,\"type\":\"ping\",\"id\":\"\xc3\x28\"}", "bad_json"},
		{"NoVersion", `{"type":"ping"}`, "bad_version"},
		{"NoType", `{"v":1}`, "unknown_type"},
		{"ServerType", `{"v":1,"type":"welcome"}`, "unknown_type"},
		{"LongID", `{"v":1,"type":"ping","id":"` + strings.Repeat("x", 65) + `"}`, "bad_payload"},
	} {
		t.Run(tc.description, func(t *testing.T) {
			_, err := realtime.DecodeClientMessage([]byte(tc.msg))
			if tc.code == "" {
				require.NoError(t, err)
				return
			}
			var pe *realtime.ProtocolError
			require.True(t, errors.As(err, &pe), "got %v", err)
			require.Equal(t, tc.code, pe.Code, pe.Message)
		})
	}
}

func TestDecodePayloadIsStrict(t *testing.T) {
	t.Parallel()
	env, err := realtime.DecodeClientMessage([]byte(`{"v":1,"type":"subscribe","payload":{"topics":[{"topic":"alerts","extra":1}]}}`))
	require.NoError(t, err)
	var p realtime.SubscribePayload
	var pe *realtime.ProtocolError
	require.True(t, errors.As(realtime.DecodePayload(env, &p), &pe))
	require.Equal(t, "bad_payload", pe.Code)

	env, err = realtime.DecodeClientMessage([]byte(`{"v":1,"type":"auth"}`))
	require.NoError(t, err)
	require.Error(t, realtime.DecodePayload(env, &realtime.AuthPayload{}), "auth needs a payload")
}
