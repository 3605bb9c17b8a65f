package router_test

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/feedloop/feedloop/pkg/testkit"
	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
	"github.com/feedloop/feedloop/services/router/internal/teamauth"
)

// rewriteTokens replaces the tokens file in one rename, as an editor or a
// ConfigMap update does; extra is appended to the entry of each team.
func (h *harness) rewriteTokens(extra map[string]string) {
	h.t.Helper()
	var b strings.Builder
	b.WriteString("tokens:\n")
	for team, tok := range teamTokens {
		if extra[team] == "remove" {
			continue
		}
		fmt.Fprintf(&b, "  - {team: %s, name: %s-lead, sha256: %s%s}\n", team, team, teamauth.Hash(tok), extra[team])
	}
	tmp := h.tokens + ".tmp"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o600); err != nil {
		h.t.Fatal(err)
	}
	if err := os.Rename(tmp, h.tokens); err != nil {
		h.t.Fatal(err)
	}
}

// Editing the tokens file revokes, removes or expires a token without a
// restart: unary calls are refused (and change nothing), an open Watch
// ends with Unauthenticated; an invalid file keeps the tokens in force.
func TestTokensFileEditsTakeEffect(t *testing.T) {
	h := start(t)
	billing, logistics, cs := h.team("billing"), h.team("logistics"), h.team("customer-success")
	const id = "fb-tokens-1"
	h.submit(id, "", item{topics: []string{"billing"}})
	testkit.Eventually(t, "the item in the read model", func() bool { _, err := billing.get(id); return err == nil })

	ws, err := logistics.c.Watch(logistics.ctx(), &feedloopv1.WatchRequest{})
	if err != nil {
		t.Fatal(err)
	}
	watchEnded := make(chan error, 1)
	go func() {
		for {
			if _, err := ws.Recv(); err != nil {
				watchEnded <- err
				return
			}
		}
	}()

	// A broken file is refused and changes nothing.
	if err := os.WriteFile(h.tokens, []byte("tokens:\n  - {team: billing, sha256: nope}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "the invalid file to be logged", func() bool { return strings.Contains(h.logs.String(), "team tokens file invalid") })
	if _, err := billing.get(id); err != nil {
		t.Fatalf("after an invalid file: %v", err)
	}

	past := time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)
	h.rewriteTokens(map[string]string{"billing": ", revoked: true", "logistics": "remove", "customer-success": ", expires: \"" + past + "\""})
	testkit.Eventually(t, "billing's token to be revoked", func() bool {
		_, err := billing.get(id)
		return status.Code(err) == codes.Unauthenticated
	})
	_, err = billing.c.Acknowledge(billing.ctx(), &feedloopv1.AcknowledgeRequest{FeedbackId: id})
	wantCode(t, "ack with a revoked token", err, codes.Unauthenticated, "team token revoked; ask for a new one")
	_, err = cs.c.List(cs.ctx(), &feedloopv1.ListRequest{})
	wantCode(t, "list with an expired token", err, codes.Unauthenticated, "team token expired on "+past+"; ask for a new one")
	select {
	case err := <-watchEnded:
		wantCode(t, "watch after its token was removed", err, codes.Unauthenticated, "unknown team token")
	case <-time.After(wait):
		t.Fatal("the watch of a removed token is still open")
	}

	// Un-revoke: billing is back, and the refused ack changed nothing.
	h.rewriteTokens(nil)
	testkit.Eventually(t, "billing's token to work again", func() bool { _, err := billing.get(id); return err == nil })
	if st := billing.status(id, "billing"); st != feedloopv1.Status_STATUS_ROUTED {
		t.Fatalf("after a refused ack billing is %s", st)
	}
}
