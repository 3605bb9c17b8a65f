package bus

import (
	"errors"
	"time"
)

// ErrPermanent marks an error that no retry can fix (bad payload, unknown
// type): the message is dead-lettered at once.
var ErrPermanent = errors.New("permanent failure")

// Permanent wraps err so that IsPermanent reports true.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err}
}

type permanentError struct{ err error }

func (e *permanentError) Error() string        { return e.err.Error() }
func (e *permanentError) Unwrap() error        { return e.err }
func (e *permanentError) Is(target error) bool { return target == ErrPermanent }

// IsPermanent reports whether err, or an error it wraps, is permanent.
func IsPermanent(err error) bool { return errors.Is(err, ErrPermanent) }

// RetryError asks the runner to redeliver the message after Delay.
type RetryError struct {
	Err   error
	Delay time.Duration
}

func (e *RetryError) Error() string { return e.Err.Error() }
func (e *RetryError) Unwrap() error { return e.Err }

// errDeadLettered tells the runner the message was copied to the dead-letter
// subject and must be terminated.
var errDeadLettered = errors.New("dead-lettered")
