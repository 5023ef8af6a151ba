package main

import (
	"embed"
	"io/fs"
	"net/http"
)

// dashboardFiles is the live dashboard page: plain HTML, CSS and one
// script, no build step and nothing from another origin.
//
//go:embed dashboard
var dashboardFiles embed.FS

// dashboardCSP lets the page load only its own files and talk only to
// its own origin (the REST API and GET /ws; CSP Level 3 'self' covers
// ws:// and wss:// of the same host): no inline script or style, no
// frames, no forms posted anywhere.
const dashboardCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// mountDashboard serves the dashboard page at /dashboard/ on mux. The
// API's own answers keep the API's policy (default-src 'none'); only the
// page's files get dashboardCSP.
func mountDashboard(mux *http.ServeMux) {
	sub, err := fs.Sub(dashboardFiles, "dashboard")
	if err != nil {
		panic(err) // the directory is embedded above
	}
	files := http.StripPrefix("/dashboard/", http.FileServerFS(sub))
	mux.Handle("GET /dashboard/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", dashboardCSP)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	}))
	mux.Handle("GET /dashboard", http.RedirectHandler("/dashboard/", http.StatusMovedPermanently))
}
