package wordvec

import (
	"bytes"
	"io"
)

func bytesReader() io.Reader { return bytes.NewReader(glove) }
