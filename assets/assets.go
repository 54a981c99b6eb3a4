// Package assets holds HossAgent's static files, embedded into the binary:
// the noir stylesheet (css/noir.css), our own scripts (js/hoss.js: result
// dismiss and fade, copy buttons, phone table labels; js/live.js: live
// updates that keep focus, the connection indicator, pause, session ended),
// the favicon (favicon.svg) and the vendored htmx 4.0.1 scripts
// (vendor/htmx.min.js, vendor/hx-sse.min.js, checked by vendor/SHA256SUMS and
// re-vendored with vendor.sh). Nothing is fetched from a CDN at run time.
package assets

import (
	"crypto/sha256"
	"embed"
	"encoding/binary"
	"encoding/hex"
	"io/fs"
	"sync"
)

// FS holds the embedded files with paths relative to this directory, for
// example "css/noir.css" and "vendor/htmx.min.js". Serve it under /assets/
// with http.FileServerFS. An embed.FS is read-only, so exporting it is safe.
//
//go:embed css js vendor favicon.svg
var FS embed.FS

// Version returns a short content hash (the first 12 hex digits of a SHA-256
// over every embedded file's path and contents) for cache-busting URLs such
// as /assets/css/noir.css?v=<Version()>. It changes whenever any embedded file
// changes and is computed once, on first use.
func Version() string { return version() }

var version = sync.OnceValue(func() string {
	h := sha256.New()
	// fs.WalkDir visits entries in lexical order, so the hash is deterministic.
	err := fs.WalkDir(FS, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := FS.ReadFile(path)
		if err != nil {
			return err
		}
		// Frame each file as path, NUL, content length, content, so that no
		// two different trees hash alike.
		h.Write([]byte(path))
		h.Write([]byte{0})
		h.Write(binary.BigEndian.AppendUint64(nil, uint64(len(b))))
		h.Write(b)
		return nil
	})
	if err != nil {
		// Cannot happen with an embed.FS; fall back to a fixed value rather
		// than panicking in a template.
		return "000000000000"
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
})
