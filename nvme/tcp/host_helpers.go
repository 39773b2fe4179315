package tcp

// Pending returns how many bytes are queued for sending and not yet handed
// to the network: while corked, what the matching Uncork will write.
func (c *Conn) Pending() int {
	c.mu.Lock()
	n := len(c.buf)
	c.mu.Unlock()
	return n
}

// SetSendDigests makes the connection send with digests d from now on,
// whatever was negotiated; what it receives is still checked against the
// negotiated ones. Like SendRaw it is for conformance tests: a host or
// controller that deliberately gets its digests wrong.
func (c *Conn) SetSendDigests(d Digests) {
	c.mu.Lock()
	c.enc.Digests = d
	c.mu.Unlock()
}
