// Package decode turns a protobuf-encoded Feedback (the NATS submission
// payload) into a message, and an undecodable payload into field violations
// that say what is wrong, in the same terms as the validator.
package decode

import (
	"google.golang.org/protobuf/proto"

	"github.com/feedloop/feedloop/pkg/protodecode"
	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
	"github.com/feedloop/feedloop/services/intake/validate"
)

// PayloadField names the whole message payload in a violation, when the bytes
// are not a Feedback at all.
const PayloadField = protodecode.PayloadField

// Feedback decodes data as a protobuf-encoded Feedback. When it does not
// decode, it returns the violation that explains why (protodecode.Explain),
// its field named as the validator names it ("feedback.text").
func Feedback(data []byte) (*feedloopv1.Feedback, []validate.Violation) {
	fb := &feedloopv1.Feedback{}
	err := proto.Unmarshal(data, fb)
	if err == nil {
		return fb, nil
	}
	v := protodecode.Explain(fb.ProtoReflect().Descriptor(), data, err, validate.Prefix)
	return nil, []validate.Violation{{Field: v.Field, Description: v.Description}}
}
