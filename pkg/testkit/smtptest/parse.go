package smtptest

import "github.com/feedloop/feedloop/pkg/mailparse"

// Subject is the message's decoded Subject header, "" if the message does
// not parse.
func (m Message) Subject() string {
	c, _ := mailparse.Parse(m.Data)
	return c.Subject
}

// Text is the message's text/plain body, transfer-decoded and in UTF-8:
// the body itself or the first text/plain part of a multipart message; ""
// if there is none.
func (m Message) Text() string {
	c, _ := mailparse.Parse(m.Data)
	return c.Text
}
