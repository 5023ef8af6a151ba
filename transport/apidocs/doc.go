// Package apidocs serves a rendered reference of adshare's OpenAPI
// document: Redoc (github.com/Redocly/redoc, MIT licence, version
// RedocVersion), shipped here as its standalone bundle with its licence
// files, so the page loads nothing from another origin.
//
// The page at GET /docs is static HTML with a <redoc spec-url> element,
// which the bundle finds and renders from GET /openapi.json; its links
// are relative, so the API mounted under a prefix (/adshare/docs) finds
// its own document. The page and its files carry a Content-Security-
// Policy of their own (CSP): scripts only from the page's origin, no
// connections elsewhere. Redoc's styled components insert <style>
// elements and its search runs in a worker made from a blob: URL, so the
// policy allows inline styles (not scripts) and blob: workers.
//
// To update Redoc: npm pack redoc@<version>, then copy
// bundles/redoc.standalone.js, bundles/redoc.standalone.js.LICENSE.txt
// and LICENSE (as redoc.LICENSE) into static/, and change RedocVersion.
package apidocs
