// Package httpport serves intake over HTTP: POST /v1/feedback with a
// protojson Feedback, and GET /healthz. Errors are JSON:
// {"error": "...", "violations": [{"field": "...", "description": "..."}]}.
package httpport

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/encoding/protojson"

	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
	"github.com/feedloop/feedloop/services/intake/internal/app"
	"github.com/feedloop/feedloop/services/intake/validate"
)

// FeedbackPath is where feedback is posted.
const FeedbackPath = "/v1/feedback"

// Check reports whether a dependency is usable, for /healthz.
type Check func(ctx context.Context) error

// Options configure the handler.
type Options struct {
	// MaxBodyBytes bounds a request body; a larger one gets 413.
	MaxBodyBytes int64
	// Checks run on GET /healthz, by name; any failure gives 503.
	Checks map[string]Check
	Log    *slog.Logger
	// Guard, if set, wraps the feedback route (authentication); /healthz
	// stays open.
	Guard func(http.Handler) http.Handler
	// TracerProvider receives the server spans (nil: the global one).
	TracerProvider trace.TracerProvider
}

// Handler returns the HTTP handler, traced with otelhttp.
func Handler(acc *app.Acceptor, o Options) http.Handler {
	h := &handler{acc: acc, o: o}
	mux := http.NewServeMux()
	var submit http.Handler = http.HandlerFunc(h.submit)
	if o.Guard != nil {
		submit = o.Guard(submit)
	}
	mux.Handle("POST "+FeedbackPath, submit)
	mux.HandleFunc(FeedbackPath, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s not allowed on %s: use POST", r.Method, FeedbackPath), nil)
	})
	mux.HandleFunc("GET /healthz", h.healthz)
	var traced []otelhttp.Option
	if o.TracerProvider != nil {
		traced = append(traced, otelhttp.WithTracerProvider(o.TracerProvider))
	}
	// Server spans are named as semconv names them, "{method} {route}"
	// ("POST /v1/feedback"; the method alone for a path no route
	// matches, so a scan of random paths adds no span names); the
	// resource's service.name says it is intake.
	return otelhttp.NewHandler(routed(mux), "intake.http", traced...)
}

// routed records the route the mux matched as the server span's
// http.route, which otelhttp knows only after the handler ran.
func routed(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mux.ServeHTTP(w, r)
		if _, route, ok := strings.Cut(r.Pattern, "/"); ok {
			trace.SpanFromContext(r.Context()).SetAttributes(semconv.HTTPRoute("/" + route))
		}
	})
}

type handler struct {
	acc *app.Acceptor
	o   Options
}

// errorBody is every error response.
type errorBody struct {
	Error      string      `json:"error"`
	Violations []violation `json:"violations,omitempty"`
}

type violation struct {
	Field       string `json:"field"`
	Description string `json:"description"`
}

func (h *handler) submit(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		writeError(w, http.StatusUnsupportedMediaType, fmt.Sprintf("Content-Type must be application/json, got %q", r.Header.Get("Content-Type")), nil)
		return
	}
	// A declared length over the limit is refused before a byte is read;
	// an undeclared (chunked) one is cut off at the limit by MaxBytesReader,
	// so memory never holds more than MaxBodyBytes of one request.
	if r.ContentLength > h.o.MaxBodyBytes {
		w.Header().Set("Connection", "close")
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body exceeds the limit of %d bytes", h.o.MaxBodyBytes), nil)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.o.MaxBodyBytes))
	if err != nil {
		if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body exceeds the limit of %d bytes", mbe.Limit), nil)
			return
		}
		writeError(w, http.StatusBadRequest, "cannot read request body: "+err.Error(), nil)
		return
	}
	fb, vs := decodeJSON(body)
	if len(vs) > 0 {
		writeError(w, http.StatusBadRequest, "malformed feedback JSON", vs)
		return
	}
	res, err := h.acc.AdmitSubmit(ctx, fb)
	switch {
	case err == nil:
	case errors.Is(err, app.ErrInvalid):
		writeError(w, http.StatusBadRequest, app.ErrInvalid.Error(), app.Violations(err))
		return
	case errors.Is(err, app.ErrForbidden):
		v, _ := app.Forbidden(err)
		writeError(w, http.StatusForbidden, app.ErrForbidden.Error(), []validate.Violation{v})
		return
	case errors.Is(err, app.ErrLimited):
		d, _ := app.RetryAfter(err)
		// Whole seconds, rounded up: a client waiting what it is told must
		// be let through.
		w.Header().Set("Retry-After", strconv.Itoa(int((d+time.Second-1)/time.Second)))
		writeError(w, http.StatusTooManyRequests, err.Error(), nil)
		return
	case errors.Is(err, app.ErrUnavailable):
		h.o.Log.WarnContext(ctx, "intake: http submit failed", "err", err)
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, err.Error(), nil)
		return
	default:
		h.o.Log.ErrorContext(ctx, "intake: http submit failed", "err", err)
		writeError(w, http.StatusInternalServerError, "internal error", nil)
		return
	}
	out, err := protojson.MarshalOptions{EmitUnpopulated: true}.Marshal(&feedloopv1.SubmitResponse{FeedbackId: res.FeedbackID, Duplicate: res.Duplicate})
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal error", nil)
		return
	}
	code := http.StatusAccepted
	if res.Duplicate {
		code = http.StatusOK
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(out)
}

// decodeJSON decodes a request body as a protojson Feedback, or returns
// the violation naming the field (path) where decoding failed.
func decodeJSON(body []byte) (*feedloopv1.Feedback, []validate.Violation) {
	fb := &feedloopv1.Feedback{}
	if err := protojson.Unmarshal(body, fb); err != nil {
		// protojson names the leaf field and the position; the path comes
		// from the position, the description is protojson's own words.
		md := fb.ProtoReflect().Descriptor()
		if off := loneSurrogate(body); off >= 0 {
			// protojson reports this as "unexpected EOF", without a position.
			return nil, []validate.Violation{{
				Field:       protoPath(md, validate.Prefix, jsonKeysAt(body, off)),
				Description: fmt.Sprintf("must be valid UTF-8: the escape %s at byte %d is half a surrogate pair", body[off:off+6], off),
			}}
		}
		field := fieldAt(body, err, md, validate.Prefix)
		return nil, []validate.Violation{{Field: field, Description: err.Error()}}
	}
	return fb, nil
}

func (h *handler) healthz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	status := map[string]string{}
	code := http.StatusOK
	for name, check := range h.o.Checks {
		if err := check(ctx); err != nil {
			status[name] = err.Error()
			code = http.StatusServiceUnavailable
		} else {
			status[name] = "ok"
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(status)
}

func writeError(w http.ResponseWriter, code int, msg string, vs []validate.Violation) {
	b := errorBody{Error: msg}
	for _, v := range vs {
		b.Violations = append(b.Violations, violation{Field: v.Field, Description: v.Description})
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(b)
}
