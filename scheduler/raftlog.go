package scheduler

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"strings"

	"github.com/hashicorp/go-hclog"
)

// hclogLevels maps hclog's levels onto slog's. Trace has no slog level; it sits one step
// below Debug, so a handler at Debug does not see raft's per-RPC chatter.
var hclogLevels = map[hclog.Level]slog.Level{
	hclog.Trace: slog.LevelDebug - 4,
	hclog.Debug: slog.LevelDebug,
	hclog.Info:  slog.LevelInfo,
	hclog.Warn:  slog.LevelWarn,
	hclog.Error: slog.LevelError,
}

// slogHCLog is an hclog.Logger that writes to a *slog.Logger, for hashicorp/raft and
// raft-autopilot, which log through hclog. The hclog name goes into the attribute "logger"
// (e.g. "raft.autopilot"). Levels are the slog handler's business: SetLevel does nothing
// and GetLevel reports the lowest level the handler takes. Safe for concurrent use.
type slogHCLog struct {
	l    *slog.Logger
	name string
}

var _ hclog.Logger = (*slogHCLog)(nil)

func newSlogHCLog(l *slog.Logger, name string) *slogHCLog { return &slogHCLog{l: l, name: name} }

func (h *slogHCLog) Log(level hclog.Level, msg string, args ...any) {
	lv, ok := hclogLevels[level]
	if !ok {
		lv = slog.LevelInfo
	}
	ctx := context.Background()
	if !h.l.Enabled(ctx, lv) {
		return
	}
	out := make([]any, 0, len(args)+2)
	if h.name != "" {
		out = append(out, "logger", h.name)
	}
	for _, a := range args {
		// hclog.Fmt values are format and arguments, which hclog formats when it writes.
		if f, ok := a.(hclog.Format); ok && len(f) > 0 {
			if format, ok := f[0].(string); ok {
				a = fmt.Sprintf(format, f[1:]...)
			}
		}
		out = append(out, a)
	}
	h.l.Log(ctx, lv, msg, out...)
}

func (h *slogHCLog) Trace(msg string, args ...any) { h.Log(hclog.Trace, msg, args...) }
func (h *slogHCLog) Debug(msg string, args ...any) { h.Log(hclog.Debug, msg, args...) }
func (h *slogHCLog) Info(msg string, args ...any)  { h.Log(hclog.Info, msg, args...) }
func (h *slogHCLog) Warn(msg string, args ...any)  { h.Log(hclog.Warn, msg, args...) }
func (h *slogHCLog) Error(msg string, args ...any) { h.Log(hclog.Error, msg, args...) }

func (h *slogHCLog) enabled(level hclog.Level) bool {
	return h.l.Enabled(context.Background(), hclogLevels[level])
}

func (h *slogHCLog) IsTrace() bool { return h.enabled(hclog.Trace) }
func (h *slogHCLog) IsDebug() bool { return h.enabled(hclog.Debug) }
func (h *slogHCLog) IsInfo() bool  { return h.enabled(hclog.Info) }
func (h *slogHCLog) IsWarn() bool  { return h.enabled(hclog.Warn) }
func (h *slogHCLog) IsError() bool { return h.enabled(hclog.Error) }

// ImpliedArgs returns nil: the arguments given to With live in the slog logger, which does
// not hand them back.
func (h *slogHCLog) ImpliedArgs() []any { return nil }

func (h *slogHCLog) With(args ...any) hclog.Logger {
	return &slogHCLog{l: h.l.With(args...), name: h.name}
}

func (h *slogHCLog) Name() string { return h.name }

func (h *slogHCLog) Named(name string) hclog.Logger {
	if h.name != "" {
		name = h.name + "." + name
	}
	return &slogHCLog{l: h.l, name: name}
}

func (h *slogHCLog) ResetNamed(name string) hclog.Logger { return &slogHCLog{l: h.l, name: name} }

// SetLevel does nothing: the slog handler decides what is logged.
func (h *slogHCLog) SetLevel(hclog.Level) {}

func (h *slogHCLog) GetLevel() hclog.Level {
	for _, lv := range []hclog.Level{hclog.Trace, hclog.Debug, hclog.Info, hclog.Warn, hclog.Error} {
		if h.enabled(lv) {
			return lv
		}
	}
	return hclog.Off
}

func (h *slogHCLog) StandardLogger(opts *hclog.StandardLoggerOptions) *log.Logger {
	return log.New(h.StandardWriter(opts), "", 0)
}

// StandardWriter logs each write as one record at Info, or, with InferLevels, at the level
// named by a leading "[ERROR]", "[WARN]", "[DEBUG]" or "[TRACE]" (removed from the message).
func (h *slogHCLog) StandardWriter(opts *hclog.StandardLoggerOptions) io.Writer {
	infer := opts != nil && (opts.InferLevels || opts.InferLevelsWithTimestamp)
	return &hclogWriter{h: h, infer: infer}
}

type hclogWriter struct {
	h     *slogHCLog
	infer bool
}

func (w *hclogWriter) Write(p []byte) (int, error) {
	msg := string(bytes.TrimRight(p, "\r\n"))
	level := hclog.Info
	if w.infer {
		level, msg = inferLevel(msg)
	}
	w.h.Log(level, msg)
	return len(p), nil
}

// inferLevel finds a bracketed level tag such as "[WARN]" in a standard-library log line
// and returns the level and the line without the tag.
func inferLevel(msg string) (hclog.Level, string) {
	tags := []struct {
		tag   string
		level hclog.Level
	}{
		{"[TRACE]", hclog.Trace}, {"[DEBUG]", hclog.Debug}, {"[INFO]", hclog.Info},
		{"[WARN]", hclog.Warn}, {"[WARNING]", hclog.Warn}, {"[ERR]", hclog.Error}, {"[ERROR]", hclog.Error},
	}
	for _, t := range tags {
		if i := strings.Index(msg, t.tag); i >= 0 {
			return t.level, strings.TrimSpace(msg[:i] + msg[i+len(t.tag):])
		}
	}
	return hclog.Info, msg
}
