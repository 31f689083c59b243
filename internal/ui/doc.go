// Package ui is the web view of the cluster that every agent serves under /ui/ on its API
// address: one HTML page, a script and a style sheet, embedded in the binary (nothing is
// fetched from anywhere else; the Content-Security-Policy says so to the browser too).
//
// The page holds no data and no secret: it asks for a bearer token (godwit acl token
// create), keeps it in the tab's sessionStorage, sends it in the Authorization header of
// each request to the JSON API (internal/api), and polls that API every 1.5 s. What a
// token may see or do is the API's decision; the page only hides buttons a viewer could
// not use.
//
// What this package must not do: read cluster state itself, or accept a token anywhere
// but in a header.
package ui
