package apidocs

import (
	"bytes"
	"embed"
	"net/http"
	"time"
)

// RedocVersion is the version of the Redoc bundle served.
const RedocVersion = "2.5.2"

// CSP is the Content-Security-Policy of the page and its files: see the
// package documentation for why styles may be inline and workers blob:.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; " +
	"font-src 'self' data:; connect-src 'self'; worker-src blob:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

//go:embed static
var static embed.FS

// Assets are the files served under /docs/, by name, with their media
// types.
var Assets = map[string]string{
	"redoc.standalone.js":             "text/javascript; charset=utf-8",
	"redoc.standalone.js.LICENSE.txt": "text/plain; charset=utf-8",
	"redoc.LICENSE":                   "text/plain; charset=utf-8",
	"docs.css":                        "text/css; charset=utf-8",
}

// loaded is when the files were built into the binary, for
// Last-Modified (they change only with it).
var loaded = time.Now()

// Page serves the reference page (GET /docs).
func Page() http.Handler {
	page := mustRead("index.html")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		setHeaders(w, "text/html; charset=utf-8", "no-cache")
		http.ServeContent(w, r, "index.html", loaded, bytes.NewReader(page))
	})
}

// Asset serves the page's files (GET /docs/{asset}); the path value
// "asset" names the file, and any other name goes to notFound (nil: a
// plain 404).
func Asset(notFound http.Handler) http.Handler {
	if notFound == nil {
		notFound = http.NotFoundHandler()
	}
	files := make(map[string][]byte, len(Assets))
	for name := range Assets {
		files[name] = mustRead(name)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("asset")
		body, ok := files[name]
		if !ok {
			notFound.ServeHTTP(w, r)
			return
		}
		setHeaders(w, Assets[name], "public, max-age=3600")
		http.ServeContent(w, r, name, loaded, bytes.NewReader(body))
	})
}

func setHeaders(w http.ResponseWriter, contentType, cache string) {
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Content-Security-Policy", CSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", cache)
}

func mustRead(name string) []byte {
	b, err := static.ReadFile("static/" + name)
	if err != nil {
		panic("apidocs: " + err.Error()) // embedded above
	}
	return b
}
