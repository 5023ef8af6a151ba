package apidocs_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/adshare/adshare/transport/apidocs"
)

// A host mounts the rendered reference next to its own routes; the page
// loads Redoc from Asset, never from a CDN.
func ExamplePage() {
	mux := http.NewServeMux()
	mux.Handle("GET /docs", apidocs.Page())
	mux.Handle("GET /docs/{asset}", apidocs.Asset(http.NotFoundHandler()))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	resp, err := http.Get(srv.URL + "/docs")
	if err != nil {
		panic(err)
	}
	resp.Body.Close()
	fmt.Println(resp.StatusCode, resp.Header.Get("Content-Type"))
	// Output: 200 text/html; charset=utf-8
}
