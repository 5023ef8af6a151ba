package transport

import "net/http"

// route is one endpoint: a method, a ServeMux path pattern (which is also its
// OpenAPI path) and its handler.
type route struct {
	method  string
	path    string
	handler http.Handler
}

// routes lists every endpoint of the API. The OpenAPI document must list
// exactly these (TestOpenAPIDocumentsEveryRoute).
func (s *server) routes() []route {
	return []route{
		{http.MethodGet, "/healthz", s.handleHealthz()},
		{http.MethodGet, "/readyz", s.handleReadyz()},
		{http.MethodGet, "/openapi.json", s.handleOpenAPI()},
	}
}
