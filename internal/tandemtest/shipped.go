package tandemtest

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// shippedConfig reads the repository's file at path (under deploy/) and
// replaces the run of lines that re matches, from its first match to its
// last, by one line per item: line gets the first submatch of re's first
// match (an indent, or the parameters the shipped lines share) and the
// item.
func shippedConfig(tb testing.TB, path string, re *regexp.Regexp, items []string, line func(sub, item string) string) string {
	tb.Helper()
	conf, err := os.ReadFile(filepath.Join(RepoRoot(tb), path))
	if err != nil {
		tb.Fatal(err)
	}
	m := re.FindAllSubmatchIndex(conf, -1)
	if len(m) == 0 {
		tb.Fatalf("%s: no lines to replace (%s)", path, re)
	}
	sub := string(conf[m[0][2]:m[0][3]])
	var lines strings.Builder
	for _, it := range items {
		lines.WriteString(line(sub, it))
	}
	return string(conf[:m[0][0]]) + lines.String() + string(conf[m[len(m)-1][1]:])
}
