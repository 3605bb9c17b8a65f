package httpport

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
)

// heartbeat keeps idle live streams open through proxies.
const heartbeat = 25 * time.Second

// events is the inbox's live stream (server-sent events): one live
// TeamService.Watch per open page, each routed item sent as an "item"
// event carrying its rendered row. A stream the router ends for the token
// (revoked, expired) sends "signedout"; other errors end the stream and the
// browser's EventSource reconnects.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	sess, ok := s.auth(w, r)
	if !ok {
		return
	}
	rc := http.NewResponseController(w)
	ctx := withSession(r.Context(), sess)
	stream, err := s.Team.Watch(ctx, &feedloopv1.WatchRequest{Live: true})
	if err != nil {
		s.callFailed(w, r, err)
		return
	}
	// The router sends headers once its watch is in place: saying "ready"
	// before that would let an item routed in between pass the page by. A
	// watch refused first has no headers, and Recv below reports why.
	md, err := stream.Header()
	ready := err == nil && md != nil
	type msg struct {
		ev  *feedloopv1.WatchResponse
		err error
	}
	msgs := make(chan msg)
	go func() {
		for {
			ev, err := stream.Recv()
			select {
			case msgs <- msg{ev, err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	// The stream tells the page it is live (the page shows so).
	fmt.Fprint(w, "retry: 3000\n\n")
	if ready {
		fmt.Fprint(w, "event: ready\ndata: {}\n\n")
	}
	_ = rc.Flush()
	tick := time.NewTicker(heartbeat)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			fmt.Fprint(w, ": keep-alive\n\n")
		case m := <-msgs:
			if m.err != nil {
				if status.Code(m.err) == codes.Unauthenticated {
					fmt.Fprint(w, "event: signedout\ndata: {}\n\n")
					_ = rc.Flush()
				}
				return
			}
			row := routedRow(m.ev.GetRouted(), s.Now())
			var b strings.Builder
			if err := s.pages["inbox"].ExecuteTemplate(&b, "row", row); err != nil {
				s.Log.Error("console: render row", "err", err)
				continue
			}
			data, _ := json.Marshal(struct {
				ID      string `json:"id"`
				Subject string `json:"subject"`
				HTML    string `json:"html"`
			}{row.ID, row.Subject, b.String()})
			fmt.Fprintf(w, "event: item\nid: %s\ndata: %s\n\n", strings.ReplaceAll(m.ev.GetEventId(), "\n", ""), data)
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
}
