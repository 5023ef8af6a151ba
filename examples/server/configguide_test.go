package main

import (
	"flag"
	"io"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestConfigurationGuideListsEveryFlag holds docs/configuration.md's table
// to the flag set: every flag once, with the variable it reads and its
// default, and no flag the server does not have.
func TestConfigurationGuideListsEveryFlag(t *testing.T) {
	t.Parallel()
	var fs *flag.FlagSet
	_, _, err := parseConfig("server", nil, func(string) string { return "" }, io.Discard, func(f *flag.FlagSet) { fs = f })
	require.NoError(t, err)

	raw, err := os.ReadFile(repoRoot + "/docs/configuration.md")
	require.NoError(t, err)
	row := regexp.MustCompile("(?m)^\\| `-([a-z0-9-]+)` \\| `([A-Z0-9_]+)` \\| ([^|]+) \\|")
	documented := map[string][2]string{}
	for _, m := range row.FindAllStringSubmatch(string(raw), -1) {
		_, dup := documented[m[1]]
		require.False(t, dup, "-%s is listed twice", m[1])
		documented[m[1]] = [2]string{m[2], strings.TrimSpace(m[3])}
	}

	fs.VisitAll(func(f *flag.Flag) {
		doc, ok := documented[f.Name]
		if !assertTrue(t, ok, "-%s is not in docs/configuration.md", f.Name) {
			return
		}
		delete(documented, f.Name)
		env := f.Usage[strings.LastIndex(f.Usage, " (")+2 : len(f.Usage)-1]
		require.Equal(t, env, doc[0], "-%s's variable", f.Name)
		want := "empty"
		if f.DefValue != "" {
			want = "`" + f.DefValue + "`"
		}
		require.Equal(t, want, doc[1], "-%s's default", f.Name)
	})
	require.Empty(t, documented, "docs/configuration.md lists flags the server does not have")
}

func assertTrue(t *testing.T, ok bool, format string, args ...any) bool {
	t.Helper()
	if !ok {
		t.Errorf(format, args...)
	}
	return ok
}
