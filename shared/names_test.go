package shared

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestNamesListed fails when an Event or Route constant of this package is
// missing from Events or Routes: its metrics would count it as "other".
func TestNamesListed(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	found := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok || g.Tok != token.CONST {
				continue
			}
			for _, spec := range g.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, id := range vs.Names {
					var list []string
					switch {
					case strings.HasPrefix(id.Name, "Event"):
						list = Events
					case strings.HasPrefix(id.Name, "Route"):
						list = Routes
					default:
						continue
					}
					lit, ok := vs.Values[i].(*ast.BasicLit)
					if !ok {
						continue
					}
					v, _ := strconv.Unquote(lit.Value)
					found++
					if !slices.Contains(list, v) {
						t.Errorf("%s (%q) is not listed in names.go", id.Name, v)
					}
				}
			}
		}
	}
	if found < 4 {
		t.Fatalf("found %d Event and Route constants; the parse is broken", found)
	}
}
