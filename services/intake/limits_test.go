package intake_test

import (
	"bytes"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
)

// heap returns the live heap after a GC and the bytes allocated so far.
func heap() (live, total uint64) {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc, m.TotalAlloc
}

// Oversized requests are refused without being read into memory: over 40
// bodies of 10 MB over HTTP (declared and chunked) and gRPC, the process
// allocates far less than one of them per request, nothing stays on the
// heap, and the service still serves.
func TestOversizedRequestsKeepMemoryBounded(t *testing.T) {
	e := start(t, testConfig())
	tenMB := []byte(`{"source":"web","externalId":"1","text":"` + strings.Repeat("x", 10<<20) + `"}`)
	req, _ := proto.Marshal(&feedloopv1.SubmitRequest{Feedback: &feedloopv1.Feedback{Source: "web", ExternalId: "1", Text: strings.Repeat("x", 10<<20)}})
	// Warm up every path once, so the baseline holds their buffers.
	e.post(t, "application/json", tenMB)
	liveBefore, totalBefore := heap()
	for i := range 40 {
		switch i % 3 {
		case 0:
			if code, _, _ := e.post(t, "application/json", tenMB); code != http.StatusRequestEntityTooLarge {
				t.Fatalf("POST %d = %d, want 413", i, code)
			}
		case 1:
			r, _ := http.NewRequestWithContext(ctxT(t), http.MethodPost, e.base+"/v1/feedback", hiddenLen{bytes.NewReader(tenMB)})
			r.Header.Set("Content-Type", "application/json")
			if code, _, _ := e.do(t, r); code != http.StatusRequestEntityTooLarge {
				t.Fatalf("chunked POST %d = %d, want 413", i, code)
			}
		case 2:
			var resp feedloopv1.SubmitResponse
			err := e.conn.Invoke(ctxT(t), "/feedloop.v1.IntakeService/Submit", rawBytes(req), &resp, grpc.ForceCodec(rawCodec{}))
			if status.Code(err) != codes.ResourceExhausted {
				t.Fatalf("gRPC %d = %v, want ResourceExhausted", i, err)
			}
		}
	}
	liveAfter, totalAfter := heap()
	// Generous bounds in bytes: reading the bodies would allocate 400 MB or
	// more (client and server share this process).
	t.Logf("allocated %d KiB, live heap %+d KiB", (totalAfter-totalBefore)>>10, (int64(liveAfter)-int64(liveBefore))>>10)
	if d := totalAfter - totalBefore; d > 64<<20 {
		t.Errorf("allocated %d MiB for 40 refused 10 MB requests, want < 64 MiB", d>>20)
	}
	if liveAfter > liveBefore && liveAfter-liveBefore > 8<<20 {
		t.Errorf("live heap grew by %d MiB, want < 8 MiB", (liveAfter-liveBefore)>>20)
	}
	e.submitValid(t, viaHTTP, "after-the-flood")
	e.submitValid(t, viaGRPC, "after-the-flood-2")
}

// INTAKE_GRPC_MAX_RECV_BYTES bounds a gRPC request.
func TestGRPCMaxRecvBytes(t *testing.T) {
	cfg := testConfig()
	cfg.GRPCMaxRecvBytes = 32 << 10
	e := start(t, cfg)
	fb := feedback("helpdesk", "big")
	fb.Attributes = map[string]string{}
	for i := range 63 {
		fb.Attributes[fmt.Sprintf("k%d", i)] = strings.Repeat("v", 1024)
	}
	_, err := e.grpc.Submit(ctxT(t), &feedloopv1.SubmitRequest{Feedback: fb})
	if st := status.Convert(err); st.Code() != codes.ResourceExhausted || !strings.Contains(st.Message(), "32768") {
		t.Fatalf("64 KB request with a 32 KiB limit = %v, want ResourceExhausted naming the limit", err)
	}
	if _, err := e.grpc.Submit(ctxT(t), &feedloopv1.SubmitRequest{Feedback: feedback("helpdesk", "small")}); err != nil {
		t.Fatalf("small request: %v", err)
	}
}

// Markup in text is feedback, not an attack on intake: it is accepted and
// published byte for byte. Whoever renders it escapes it (html/template in
// the router's status page and the notifier's HTML email, tested there).
func TestMarkupIsKeptVerbatim(t *testing.T) {
	e := start(t, testConfig())
	in := feedback("helpdesk", "html-1")
	in.Subject = `Checkout <button> does nothing`
	in.Text = `When I paste <script>alert("x")</script> or <img src=x onerror=alert(1)> into the form, it breaks & I lose my cart.`
	in.Customer.Name = `Zoë <b>O'Neil</b>`
	res, err := e.grpc.Submit(ctxT(t), &feedloopv1.SubmitRequest{Feedback: in})
	if err != nil {
		t.Fatal(err)
	}
	evs, ids := e.received(t)
	if len(evs) != 1 {
		t.Fatalf("%d events, want 1", len(evs))
	}
	checkEvent(t, evs[0], ids[0], in, res.GetFeedbackId())
}
