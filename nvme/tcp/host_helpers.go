package tcp

// Pending returns how many bytes are queued for sending and not yet handed
// to the network: while corked, what the matching Uncork will write.
func (c *Conn) Pending() int {
	c.mu.Lock()
	n := len(c.buf)
	c.mu.Unlock()
	return n
}
