// Package docs holds the guides; its test keeps troubleshooting.md true to
// the code.
package docs

import (
	"bufio"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// statusByKind mirrors transport's statusByKind (transport/errors.go), the
// one table from an errs.Kind to an HTTP status; TestStatusTableIsTransports
// holds the two together.
var statusByKind = map[string]int{
	"Internal":        http.StatusInternalServerError,
	"Invalid":         http.StatusUnprocessableEntity,
	"Malformed":       http.StatusBadRequest,
	"NotFound":        http.StatusNotFound,
	"Conflict":        http.StatusConflict,
	"Unauthenticated": http.StatusUnauthorized,
	"Forbidden":       http.StatusForbidden,
	"RateLimited":     http.StatusTooManyRequests,
	"Unavailable":     http.StatusServiceUnavailable,
	"TooLarge":        http.StatusRequestEntityTooLarge,
}

// httpStatus names the net/http constants transport's literal problems use.
var httpStatus = map[string]int{
	"StatusBadRequest": http.StatusBadRequest, "StatusForbidden": http.StatusForbidden,
	"StatusNotFound": http.StatusNotFound, "StatusMethodNotAllowed": http.StatusMethodNotAllowed,
	"StatusUnsupportedMediaType": http.StatusUnsupportedMediaType, "StatusServiceUnavailable": http.StatusServiceUnavailable,
	"StatusTooManyRequests": http.StatusTooManyRequests, "StatusConflict": http.StatusConflict,
	"StatusUnprocessableEntity": http.StatusUnprocessableEntity, "StatusUnauthorized": http.StatusUnauthorized,
}

// answeredAs are the codes whose HTTP answer is not their kind's status:
// transport's webhookError (transport/billing_handlers.go) answers a
// refused webhook delivery 400 (bad.Kind = errs.Malformed), so that Stripe
// shows it and retries. TestTroubleshootingListsEveryProblemCode checks
// that the rekinding is still there.
var answeredAs = map[string]int{
	"invalid_webhook_signature": http.StatusBadRequest,
	"invalid_webhook_event":     http.StatusBadRequest,
	"webhook_api_version":       http.StatusBadRequest,
}

// problemCode is one code the code can answer with, and where it is made.
type problemCode struct {
	status int
	where  string
}

// codesInSource finds every problem code in the module's non-test source:
// each errs.New(errs.<Kind>, "<code>", …), and in package transport each
// literal problem (a statusError or a Problem with a string code and a
// status).
func codesInSource(t *testing.T) map[string][]problemCode {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]problemCode{}
	fset := token.NewFileSet()
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != root && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		inTransport := filepath.Dir(rel) == "transport"
		ast.Inspect(f, func(n ast.Node) bool {
			switch x := n.(type) {
			case *ast.CallExpr:
				sel, ok := x.Fun.(*ast.SelectorExpr)
				if !ok || sel.Sel.Name != "New" || len(x.Args) != 3 {
					return true
				}
				if !isIdent(sel.X, "errs") {
					return true
				}
				kind, ok1 := x.Args[0].(*ast.SelectorExpr)
				lit, ok2 := x.Args[1].(*ast.BasicLit)
				if !ok1 || !ok2 || lit.Kind != token.STRING {
					t.Errorf("%s: errs.New without a literal kind and code: the list below cannot find it", fset.Position(x.Pos()))
					return true
				}
				code, _ := strconv.Unquote(lit.Value)
				status, ok := statusByKind[kind.Sel.Name]
				if !ok {
					t.Errorf("%s: unknown kind %s", fset.Position(x.Pos()), kind.Sel.Name)
				}
				out[code] = append(out[code], problemCode{status, fset.Position(x.Pos()).String()})
			case *ast.CompositeLit:
				if !inTransport {
					return true
				}
				var code string
				status := 0
				for _, e := range x.Elts {
					kv, ok := e.(*ast.KeyValueExpr)
					if !ok {
						continue
					}
					key, _ := kv.Key.(*ast.Ident)
					if key == nil {
						continue
					}
					switch strings.ToLower(key.Name) {
					case "code":
						if lit, ok := kv.Value.(*ast.BasicLit); ok && lit.Kind == token.STRING {
							code, _ = strconv.Unquote(lit.Value)
						}
					case "status":
						if sel, ok := kv.Value.(*ast.SelectorExpr); ok && isIdent(sel.X, "http") {
							status = httpStatus[sel.Sel.Name]
							if status == 0 {
								t.Errorf("%s: add %s to httpStatus", fset.Position(kv.Pos()), sel.Sel.Name)
							}
						}
					}
				}
				if code != "" && status != 0 {
					out[code] = append(out[code], problemCode{status, fset.Position(x.Pos()).String()})
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// documentedCodes reads troubleshooting.md's table rows: | `code` | status | … |.
func documentedCodes(t *testing.T) map[string]int {
	t.Helper()
	f, err := os.Open("troubleshooting.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	row := regexp.MustCompile("^\\| `([a-z0-9_]+)` \\| (\\d{3})\\b[^|]*\\| (.+) \\|$")
	out := map[string]int{}
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		text := sc.Text()
		if !strings.HasPrefix(text, "| `") {
			continue
		}
		m := row.FindStringSubmatch(text)
		if m == nil {
			t.Errorf("troubleshooting.md:%d: a row that is not | `code` | status | what to do |", line)
			continue
		}
		if _, dup := out[m[1]]; dup {
			t.Errorf("troubleshooting.md:%d: %s is listed twice", line, m[1])
		}
		out[m[1]], _ = strconv.Atoi(m[2])
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestTroubleshootingListsEveryProblemCode fails when a problem code is
// added to or removed from the code without troubleshooting.md following,
// or when the status it documents is not the one the API answers.
func TestTroubleshootingListsEveryProblemCode(t *testing.T) {
	t.Parallel()
	source, docs := codesInSource(t), documentedCodes(t)
	if len(source) < 100 {
		t.Fatalf("found only %d codes in the source: the scan is broken", len(source))
	}
	for _, code := range slices.Sorted(maps.Keys(source)) {
		status, ok := docs[code]
		if !ok {
			t.Errorf("%s (%s) is not in docs/troubleshooting.md: add a row saying what to do about it", code, source[code][0].where)
			continue
		}
		for _, c := range source[code] {
			if s, ok := answeredAs[code]; ok {
				c.status = s
			}
			if c.status != status {
				t.Errorf("%s: troubleshooting.md says %d, %s answers %d", code, status, c.where, c.status)
			}
		}
	}
	handlers, err := os.ReadFile(filepath.Join("..", "transport", "billing_handlers.go"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(handlers), "bad.Kind = errs.Malformed") {
		t.Error("transport's webhookError no longer answers refused webhooks 400: update answeredAs and troubleshooting.md")
	}
	for _, code := range slices.Sorted(maps.Keys(docs)) {
		if _, ok := source[code]; !ok {
			t.Errorf("docs/troubleshooting.md lists %s, which no code makes: remove the row", code)
		}
	}
}

// TestStatusTableIsTransports holds statusByKind to transport's table, so
// that the statuses checked above are the ones the API answers.
func TestStatusTableIsTransports(t *testing.T) {
	t.Parallel()
	src, err := os.ReadFile(filepath.Join("..", "transport", "errors.go"))
	if err != nil {
		t.Fatal(err)
	}
	entry := regexp.MustCompile(`(?m)^\s*errs\.(\w+):\s*http\.(\w+),`)
	found := entry.FindAllStringSubmatch(string(src), -1)
	if len(found) != len(statusByKind) {
		t.Fatalf("transport/errors.go maps %d kinds, this test %d", len(found), len(statusByKind))
	}
	for _, m := range found {
		want, ok := httpStatus[m[2]]
		if m[2] == "StatusInternalServerError" {
			want, ok = http.StatusInternalServerError, true
		} else if m[2] == "StatusRequestEntityTooLarge" {
			want, ok = http.StatusRequestEntityTooLarge, true
		}
		if !ok || statusByKind[m[1]] != want {
			t.Errorf("transport maps %s to %s; this test to %d", m[1], m[2], statusByKind[m[1]])
		}
	}
}

// isIdent reports whether e is the identifier name.
func isIdent(e ast.Expr, name string) bool {
	id, ok := e.(*ast.Ident)
	return ok && id.Name == name
}

// TestGuidesAreLinked: the README links every guide, and every relative
// link of a guide leads to a file that exists.
func TestGuidesAreLinked(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	guides, err := filepath.Glob("*.md")
	if err != nil {
		t.Fatal(err)
	}
	if len(guides) < 9 {
		t.Fatalf("%d guides: %v", len(guides), guides)
	}
	link := regexp.MustCompile(`\]\(([^)#\s]+)(#[^)]*)?\)`)
	for _, g := range guides {
		if !strings.Contains(string(readme), "(docs/"+g+")") {
			t.Errorf("README.md does not link docs/%s", g)
		}
		body, err := os.ReadFile(g)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range link.FindAllStringSubmatch(string(body), -1) {
			target := m[1]
			if strings.Contains(target, "://") {
				continue
			}
			if _, err := os.Stat(target); err != nil {
				t.Errorf("%s links %s, which does not exist", g, target)
			}
		}
	}
}
