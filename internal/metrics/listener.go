package metrics

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// Listener serves /metrics on an address of its own (the agent config's metrics.listen),
// for scrapers kept apart from the API. It is HTTPS with the same mutual TLS as every other
// godwit listener: the scraper presents a certificate of the cluster's CA.
type Listener struct {
	srv  *http.Server
	addr string
	done chan struct{}
}

// Listen serves h at /metrics on bind (host:port; port 0 picks one) over TLS with tc (a
// server configuration that verifies client certificates).
func Listen(bind string, tc *tls.Config, h http.Handler, log *slog.Logger) (*Listener, error) {
	ln, err := net.Listen("tcp", bind)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", h)
	l := &Listener{addr: ln.Addr().String(), done: make(chan struct{}), srv: &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}}
	go func() {
		defer close(l.done)
		if err := l.srv.Serve(tls.NewListener(ln, tc)); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("metrics listener stopped", "err", err)
		}
	}()
	return l, nil
}

// Addr is the address bound.
func (l *Listener) Addr() string { return l.addr }

// Close stops serving; scrapes in progress get until ctx ends.
func (l *Listener) Close(ctx context.Context) error {
	err := l.srv.Shutdown(ctx)
	<-l.done
	return err
}
