package web

import (
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"time"
)

// requestIDHeader carries the id that ties a request's access log line to
// the logs of a proxy in front: taken from the request when it has a
// usable one, else made up, and always echoed in the response.
const requestIDHeader = "X-Request-Id"

// accessLog logs one line per request once it is answered: the method,
// the route pattern that matched (never the path: /v/{token} and
// /r/{token} carry secrets), the status, the duration in seconds, the
// remote address and the request id. It must wrap the mux directly, so
// the pattern the mux records on the request is there to read.
func accessLog(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get(requestIDHeader)
		if !validRequestID(id) {
			id = newRequestID()
		}
		w.Header().Set(requestIDHeader, id)
		lw := &loggedWriter{ResponseWriter: w}
		defer func() {
			rec := recover()
			if rec != nil {
				lw.status = http.StatusInternalServerError // what the server's recovery ends in
			}
			route := r.Pattern
			if route == "" {
				route = "unmatched"
			}
			log.LogAttrs(r.Context(), slog.LevelInfo, "http request",
				slog.String("method", r.Method),
				slog.String("route", route),
				slog.Int("status", lw.statusOrOK()),
				slog.Float64("duration_seconds", time.Since(start).Seconds()),
				slog.String("remote", r.RemoteAddr),
				slog.String("x_request_id", id))
			if rec != nil {
				panic(rec)
			}
		}()
		next.ServeHTTP(lw, r)
	})
}

// validRequestID accepts ids of 1 to 128 printable ASCII characters
// without spaces, so a client cannot forge log lines or flood them.
func validRequestID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] <= ' ' || id[i] > '~' {
			return false
		}
	}
	return true
}

// newRequestID returns 16 random bytes in hex.
func newRequestID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// loggedWriter remembers the status of the response.
type loggedWriter struct {
	http.ResponseWriter
	status int
}

func (w *loggedWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *loggedWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap gives http.ResponseController the writer underneath.
func (w *loggedWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// statusOrOK is the status sent, 200 when the handler wrote nothing.
func (w *loggedWriter) statusOrOK() int {
	if w.status == 0 {
		return http.StatusOK
	}
	return w.status
}
