// Package pki owns the cluster's identities and the certificates that carry them: the
// cluster CA, node and operator certificates (ECDSA P-256), the files they live in, and the
// TLS 1.3 configurations with which godwit processes authenticate each other.
//
// An identity is a node name and a role, written into a certificate the cluster's CA signed:
// the node name as the Subject CommonName, the role as the only OrganizationalUnit
// (`server`, `client` or `operator`), and Organization "godwit". Node certificates (server,
// client) may serve and dial; operator certificates may only dial.
//
// Every TLS configuration made here requires TLS 1.3 and a certificate from the peer that
// chains to the cluster CA and carries a valid identity, on both sides. A client may in
// addition insist on the node it meant to reach.
//
// What this package must not do: open connections or listen (callers own the network), or
// make authorization decisions beyond "this peer holds a valid identity of this cluster".
// Which role may ask for what, and whether a node may act for a migration, is decided by the
// callers (migrate/, scheduler/, the HTTP API) from the Identity this package reports.
package pki
