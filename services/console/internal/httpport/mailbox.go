package httpport

import (
	"net/http"
	"slices"
	"strings"
)

// mailbox lists the dev mailbox, newest first. Dev only; no sign-in.
func (s *Server) mailbox(w http.ResponseWriter, r *http.Request) {
	ms := s.Mailbox()
	slices.SortStableFunc(ms, func(a, b Mail) int { return b.At.Compare(a.At) })
	sess, _ := s.Sealer.Open(r)
	s.render(w, http.StatusOK, "mailbox", page{Title: "Dev mailbox", Session: sess, Nav: "mailbox", Data: ms})
}

func (s *Server) findMail(id string) (Mail, bool) {
	for _, m := range s.Mailbox() {
		if m.ID == id {
			return m, true
		}
	}
	return Mail{}, false
}

func (s *Server) mail(w http.ResponseWriter, r *http.Request) {
	m, ok := s.findMail(r.PathValue("id"))
	if !ok {
		s.errorPage(w, r, http.StatusNotFound, "No such message", "The mailbox has no message with this id.")
		return
	}
	sess, _ := s.Sealer.Open(r)
	s.render(w, http.StatusOK, "mail", page{Title: m.Subject, Session: sess, Nav: "mailbox", Data: struct {
		Mail
		ToList string
	}{m, strings.Join(m.To, ", ")}})
}

func (s *Server) mailHTML(w http.ResponseWriter, r *http.Request) {
	m, ok := s.findMail(r.PathValue("id"))
	if !ok || m.HTML == "" {
		http.Error(w, "no HTML body", http.StatusNotFound)
		return
	}
	serveFrame(w, m.HTML)
}
