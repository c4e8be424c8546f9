// Package examples bundles the example applications that ship with Lode —
// today the study's Django reference app (django/) — so that `lode bench`
// can run them from any directory: Extract writes them into the study's
// work directory and matrix files refer to that copy as {examples}.
package examples

import (
	"embed"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// files holds the apps' sources. The patterns name files, not folders, so
// Python's __init__.py files are included and stray __pycache__ folders or
// local databases of a working copy are not.
//
//go:embed django/manage.py django/studyapp/*.py django/studyapp/*/*.py django/studyapp/*/*/*.py
//go:embed django/studyapp/templates/studyapp/*.html
var files embed.FS

// FS returns the bundled apps' files, rooted at this folder.
func FS() fs.FS { return files }

// Extract writes the bundled apps into dir (created if needed), e.g.
// dir/django/manage.py, and returns dir.
func Extract(dir string) (string, error) {
	err := fs.WalkDir(files, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		target := filepath.Join(dir, filepath.FromSlash(path))
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := files.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
	if err != nil {
		return "", fmt.Errorf("extract example apps: %w", err)
	}
	return dir, nil
}
