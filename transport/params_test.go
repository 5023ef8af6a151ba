package transport

import (
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestQueryParsesAsParseQuery: the list newQuery keeps holds what
// url.ParseQuery's map does, in order, for queries that parse; a pair that
// does not is an error naming the query, not a silent drop.
func TestQueryParsesAsParseQuery(t *testing.T) {
	t.Parallel()
	for _, raw := range []string{"", "a=1", "a=1&b=2&a=3", "device=d&gdpr_applies=false", "k=a+b%20c&%6Bey=%E2%82%AC",
		"flag&x=&=v&&y=1", "keywords=coffee,Espresso&screen=home"} {
		q := newQuery(httptest.NewRequest("GET", "/x?"+raw, nil))
		require.NoError(t, q.err(), raw)
		want, err := url.ParseQuery(raw)
		require.NoError(t, err)
		got := url.Values{}
		for _, p := range q.pairs {
			got[p.name] = append(got[p.name], p.value)
		}
		if len(want) == 0 {
			require.Empty(t, got, raw)
			continue
		}
		require.Equal(t, want, got, raw)
	}

	q := newQuery(httptest.NewRequest("GET", "/x?a=1&a=2&b=3", nil))
	require.Equal(t, "3", q.string("b", 10))
	require.True(t, q.present("a"))
	require.False(t, q.present("c"))
	require.Empty(t, q.string("a", 10))
	require.ErrorContains(t, q.err(), "a query parameter is not valid")
	require.Contains(t, q.fields, "query/a", "given twice")

	for raw, field := range map[string]string{
		"a=1;b=2":       "query",
		"a=%zz":         "query/a",
		"%zz=1":         "query",
		"device=%E2%8&": "query/device",
	} {
		q := newQuery(httptest.NewRequest("GET", "/x?"+strings.ReplaceAll(raw, " ", "+"), nil))
		require.Error(t, q.err(), raw)
		require.Contains(t, q.fields, field, raw)
	}
	many := strings.Repeat("a=1&", maxQueryParams) + "a=1"
	q = newQuery(httptest.NewRequest("GET", "/x?"+many, nil))
	require.Contains(t, q.fields, "query")
	require.Empty(t, q.pairs, "nothing of an over-long query is read")
}
