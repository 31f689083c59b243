package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/godwit-io/godwit/internal/api"
	"github.com/godwit-io/godwit/internal/pki"
)

// noLeaderWait is how long a request waits for a leader to be elected.
const noLeaderWait = 15 * time.Second

// apiClient talks to an agent's HTTPS API (internal/api) as the operator.
type apiClient struct {
	addr string // host:port of the agent asked
	id   *pki.TLS
	hc   *http.Client
}

// newAPIClient resolves the client flags and makes the client; problems are usage errors.
func newAPIClient(cf *clientFlags) (*apiClient, error) {
	addr, id, err := cf.identity()
	if err != nil {
		return nil, err
	}
	tc := id.ClientConfig("")
	tc.NextProtos = []string{"http/1.1"}
	return &apiClient{addr: addr, id: id, hc: &http.Client{
		Transport: &http.Transport{TLSClientConfig: tc, TLSHandshakeTimeout: 10 * time.Second},
		Timeout:   time.Minute,
	}}, nil
}

// apiError is an error answer of the API. Bad input (400) and unknown things (404) are
// usage errors, exit 2; everything else is a runtime failure, exit 1.
type apiError struct {
	status int
	body   api.Error
}

func (e *apiError) Error() string {
	msg := e.body.Message
	for _, p := range e.body.Problems {
		msg += "\n" + p.String()
	}
	return fmt.Sprintf("%s (%s)", msg, e.body.Code)
}

// exitErr turns an API error into the CLI's error kinds.
func exitErr(err error) error {
	var ae *apiError
	if errors.As(err, &ae) && (ae.status == http.StatusBadRequest || ae.status == http.StatusNotFound) {
		return usageError{err}
	}
	return err
}

// call sends one request to path and decodes a 2xx answer into out (nil: discard). A
// client agent's 421 (ask the leader) is followed once, to the address it names.
func (a *apiClient) call(ctx context.Context, method, path, contentType string, body []byte, out any) error {
	addr := a.addr
	// While the cluster elects a leader (code no-leader: nothing was recorded) the
	// request is tried again for a while.
	retryUntil := time.Now().Add(noLeaderWait)
	for redirects := 0; ; redirects++ {
		req, err := http.NewRequestWithContext(ctx, method, "https://"+addr+path, bytes.NewReader(body))
		if err != nil {
			return err
		}
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		resp, err := a.hc.Do(req)
		if err != nil {
			if ctx.Err() == nil && a.isMigrationService(ctx, addr) {
				return usagef("%s is a migration service (godwit endpoint, godwit dev), not an agent's API: this command needs an agent (godwit agent serves its API on api.bind)", addr)
			}
			return fmt.Errorf("%s unreachable: %w", addr, err)
		}
		data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("%s: reading the answer: %w", addr, err)
		}
		if resp.StatusCode >= 300 {
			ae := &apiError{status: resp.StatusCode}
			if jerr := json.Unmarshal(data, &ae.body); jerr != nil || ae.body.Code == "" {
				return fmt.Errorf("%s: %s: %s", addr, resp.Status, strings.TrimSpace(string(data)))
			}
			if ae.body.Code == api.CodeNoLeader && time.Now().Before(retryUntil) {
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(500 * time.Millisecond):
				}
				redirects--
				continue
			}
			if resp.StatusCode == http.StatusMisdirectedRequest && ae.body.LeaderAddr != "" && redirects == 0 {
				if next, err := parseNodeAddr(ae.body.LeaderAddr); err == nil {
					addr = next
					continue
				}
			}
			return ae
		}
		if out == nil {
			return nil
		}
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("%s: the answer is not what this CLI expects: %w", addr, err)
		}
		return nil
	}
}

func (a *apiClient) get(ctx context.Context, path string, out any) error {
	return a.call(ctx, http.MethodGet, path, "", nil, out)
}

// isAgentAPI tells an agent's API from a bare migration service at addr from the TLS
// handshake alone: the API answers to the ALPN protocol api.ALPN, a migration service to
// none. It returns an error when addr cannot be reached.
func (a *apiClient) isAgentAPI(ctx context.Context, addr string) (bool, error) {
	tc := a.id.ClientConfig("")
	tc.NextProtos = []string{api.ALPN}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	d := tls.Dialer{NetDialer: &net.Dialer{}, Config: tc}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return false, err
	}
	defer conn.Close()
	return conn.(*tls.Conn).ConnectionState().NegotiatedProtocol == api.ALPN, nil
}

func (a *apiClient) isMigrationService(ctx context.Context, addr string) bool {
	isAPI, err := a.isAgentAPI(ctx, addr)
	return err == nil && !isAPI
}

// addReadFlags registers --json and the client flags.
func addReadFlags(fs *flag.FlagSet) (*bool, *clientFlags) {
	asJSON := fs.Bool("json", false, "print the API's answer as JSON")
	return asJSON, addClientFlags(fs)
}
