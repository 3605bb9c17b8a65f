package intake_test

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/feedloop/feedloop/pkg/apikey"
	"github.com/feedloop/feedloop/pkg/bus"
	"github.com/feedloop/feedloop/pkg/lifecycle"
	"github.com/feedloop/feedloop/pkg/testkit"
	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
	"github.com/feedloop/feedloop/services/intake"
)

// keysFile writes an INTAKE_API_KEYS_FILE and returns its path.
func keysFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "intake-keys.yaml")
	writeKeys(t, p, body)
	return p
}

func writeKeys(t *testing.T, path, body string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func withKey(t *testing.T, key string) metadataCtx {
	return metadataCtx{t: t, key: key}
}

type metadataCtx struct {
	t   *testing.T
	key string
}

func (m metadataCtx) submit(e *env, fb *feedloopv1.Feedback) (*feedloopv1.SubmitResponse, error) {
	ctx := metadata.AppendToOutgoingContext(ctxT(m.t), "authorization", "Bearer "+m.key)
	return e.grpc.Submit(ctx, &feedloopv1.SubmitRequest{Feedback: fb})
}

func (e *env) postKey(t *testing.T, key string, fb *feedloopv1.Feedback) (int, []byte, http.Header) {
	t.Helper()
	body, _ := protojson.Marshal(fb)
	req, _ := http.NewRequestWithContext(ctxT(t), http.MethodPost, e.base+"/v1/feedback", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	return e.do(t, req)
}

const helpdeskKeys = `
keys:
  - {source: helpdesk, name: zendesk-prod, sha256: %s}
  - {source: helpdesk, name: zendesk-old, sha256: %s, expires: 2020-01-01T00:00:00Z}
  - {source: crm, name: salesforce, sha256: %s, revoked: true}
`

func TestAPIKeys(t *testing.T) {
	path := keysFile(t, fmtKeys(helpdeskKeys, "zd-live", "zd-old", "sf-gone"))
	cfg := testConfig()
	cfg.APIKeysFile, cfg.ReloadInterval = path, 100*time.Millisecond
	e := start(t, cfg)

	// The key's own source: accepted.
	if res, err := withKey(t, "zd-live").submit(e, feedback("helpdesk", "K-1")); err != nil || res.GetFeedbackId() == "" {
		t.Fatalf("own source = %v, %v", res, err)
	}
	// No, unknown, expired, revoked keys: Unauthenticated, nothing published.
	if _, err := e.grpc.Submit(ctxT(t), &feedloopv1.SubmitRequest{Feedback: feedback("helpdesk", "K-2")}); status.Code(err) != codes.Unauthenticated ||
		!strings.Contains(err.Error(), "missing API key") {
		t.Errorf("no key = %v, want Unauthenticated naming the missing key", err)
	}
	for key, msg := range map[string]string{"nope": "unknown API key", "zd-old": "key expired on 2020-01-01T00:00:00Z", "sf-gone": "key revoked"} {
		if _, err := withKey(t, key).submit(e, feedback("helpdesk", "K-2")); status.Code(err) != codes.Unauthenticated || !strings.Contains(err.Error(), msg) {
			t.Errorf("key %s = %v, want Unauthenticated with %q", key, err, msg)
		}
	}
	// Another source: PermissionDenied naming feedback.source.
	_, err := withKey(t, "zd-live").submit(e, feedback("crm", "K-3"))
	if st := status.Convert(err); st.Code() != codes.PermissionDenied || !strings.Contains(st.Message(), `may only submit for source "helpdesk", got "crm"`) {
		t.Errorf("other source = %v, want PermissionDenied", err)
	} else if br := badRequestOf(st); br == nil || br.GetFieldViolations()[0].GetField() != "feedback.source" {
		t.Errorf("PermissionDenied details = %v, want a BadRequest on feedback.source", st.Details())
	}
	// A batch answers per item, like validation: the foreign item is refused,
	// the others accepted.
	ctx := metadata.AppendToOutgoingContext(ctxT(t), "authorization", "Bearer zd-live")
	res, err := e.grpc.SubmitBatch(ctx, &feedloopv1.SubmitBatchRequest{Items: []*feedloopv1.Feedback{
		feedback("helpdesk", "K-4"), feedback("crm", "K-5"),
	}})
	if err != nil || len(res.GetResults()) != 2 || res.GetResults()[0].GetFeedbackId() == "" ||
		res.GetResults()[1].GetFeedbackId() != "" || res.GetResults()[1].GetViolations()[0].GetField() != "feedback.source" {
		t.Fatalf("batch = %v, %v; want K-4 accepted, K-5 refused on feedback.source", res, err)
	}
	// HTTP: 401 with a challenge, 403 with the field.
	if code, body, hdr := e.postKey(t, "", feedback("helpdesk", "K-6")); code != http.StatusUnauthorized || !strings.HasPrefix(hdr.Get("WWW-Authenticate"), "Bearer") {
		t.Errorf("HTTP without key = %d %s %v, want 401 with WWW-Authenticate", code, body, hdr)
	}
	if code, body, _ := e.postKey(t, "zd-live", feedback("crm", "K-6")); code != http.StatusForbidden || !strings.Contains(string(body), `"field":"feedback.source"`) {
		t.Errorf("HTTP other source = %d %s, want 403 naming feedback.source", code, body)
	}
	if code, body, _ := e.postKey(t, "zd-live", feedback("helpdesk", "K-7")); code != http.StatusAccepted {
		t.Errorf("HTTP own source = %d %s, want 202", code, body)
	}
	// Health stays open; NATS (guarded by NATS permissions) needs no key.
	req, _ := http.NewRequestWithContext(ctxT(t), http.MethodGet, e.base+"/healthz", nil)
	if code, body, _ := e.do(t, req); code != http.StatusOK {
		t.Errorf("/healthz = %d %s", code, body)
	}
	data, _ := proto.Marshal(feedback("", "K-8"))
	if _, err := e.bus.PublishData(ctxT(t), bus.SubmitSubject("survey"), "k-8", data, nil); err != nil {
		t.Fatal(err)
	}
	e.waitReceived(t, 4) // K-1, K-4, K-7, K-8

	// Rotation without restart: the old key revoked, a new one added.
	writeKeys(t, path, fmtKeys(`
keys:
  - {source: helpdesk, name: zendesk-prod, sha256: %s, revoked: true}
  - {source: helpdesk, name: zendesk-2027, sha256: %s}
`, "zd-live", "zd-new"))
	testkit.Eventually(t, "the new key to be accepted", func() bool {
		_, err := withKey(t, "zd-new").submit(e, feedback("helpdesk", "K-9"))
		return err == nil
	})
	if _, err := withKey(t, "zd-live").submit(e, feedback("helpdesk", "K-10")); status.Code(err) != codes.Unauthenticated {
		t.Errorf("rotated-out key = %v, want Unauthenticated", err)
	}
	// A broken file keeps the keys in force.
	writeKeys(t, path, "keys:\n  - {source: helpdesk, sha256: not-hex}\n")
	testkit.Eventually(t, "the invalid file to be logged", func() bool {
		return strings.Contains(e.logs.String(), "intake API keys file invalid; keeping the current one")
	})
	if _, err := withKey(t, "zd-new").submit(e, feedback("helpdesk", "K-11")); err != nil {
		t.Errorf("after an invalid file = %v, want the last good keys in force", err)
	}
	e.waitReceived(t, 6)
}

func TestAPIKeysFileInvalidAtStart(t *testing.T) {
	path := keysFile(t, "keys:\n  - {source: Help Desk, sha256: "+apikey.Hash("x")+"}\n")
	cfg := testConfig()
	cfg.APIKeysFile = path
	_, err := intake.New(cfg,
		&lifecycle.Infra{Bus: testkit.Bus(t), Redis: testkit.RedisClient(t)})
	if err == nil || !strings.Contains(err.Error(), "INTAKE_API_KEYS_FILE") || !strings.Contains(err.Error(), "keys[0].source") {
		t.Fatalf("New = %v, want an error naming INTAKE_API_KEYS_FILE and keys[0].source", err)
	}
}

func fmtKeys(format string, secrets ...string) string {
	args := make([]any, len(secrets))
	for i, s := range secrets {
		args[i] = apikey.Hash(s)
	}
	return fmt.Sprintf(format, args...)
}

func badRequestOf(st *status.Status) *errdetails.BadRequest {
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			return br
		}
	}
	return nil
}
