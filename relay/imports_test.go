package relay

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const internalPrefix = "github.com/relaykit/twilio-relay/relay/internal/"

// TestDomainImportsOnlyTheStandardLibrary keeps package relay free of outside dependencies: they belong
// in sub-packages (STYLE.md). Its own internal packages are allowed, and are held to the same rule.
func TestDomainImportsOnlyTheStandardLibrary(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil || len(files) == 0 {
		t.Fatalf("no files: %v", err)
	}
	internal, _ := filepath.Glob("internal/*/*.go")
	fset := token.NewFileSet()
	for _, f := range append(files, internal...) {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(fset, f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range af.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if first, _, _ := strings.Cut(path, "/"); strings.Contains(first, ".") && !strings.HasPrefix(path, internalPrefix) {
				t.Errorf("%s imports %s: the domain package may import only the standard library", f, path)
			}
		}
	}
}
