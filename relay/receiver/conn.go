package receiver

import (
	"errors"
	"io"
	"net"
	"os"
)

// A connection that has not sent a byte when the read timeout passes carries no request, so it gets no
// answer: it is closed. fasthttp answers a timeout on a connection's first request with an error response
// (our 503 read_timeout) whether or not a byte came; an HTTP client that opened the connection but had
// not used it yet (Go's keeps spare ones) would read that 503 as the answer to the request it sends next
// (issue #20). quietListener's connections turn that timeout into an end of stream, which fasthttp
// closes silently. Once a byte has arrived, a timeout is a timeout: a request started and not finished
// keeps its 503. (Keep-alive connections between requests are fasthttp's idle timeout, silent already.)

// quietListener wraps the connections it accepts in quietConn.
type quietListener struct{ net.Listener }

func (l quietListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &quietConn{Conn: c}, nil
}

// quietConn reports a read timeout before its first byte as io.EOF. fasthttp reads a connection from one
// goroutine, so started needs no lock.
type quietConn struct {
	net.Conn
	started bool
}

func (c *quietConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.started = true
	} else if !c.started && errors.Is(err, os.ErrDeadlineExceeded) {
		return 0, io.EOF
	}
	return n, err
}
