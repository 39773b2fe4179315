package initiator

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/nvmftest/nvmftest/nvme"
)

// authTID numbers DH-HMAC-CHAP transactions.
var authTID atomic.Uint32

// authBufSize is what an Authentication Receive asks for (as Linux: enough
// for an ffdhe8192 challenge).
const authBufSize = 4096

// ErrAuthFailed is wrapped by every failed DH-HMAC-CHAP transaction.
var ErrAuthFailed = errors.New("DH-HMAC-CHAP authentication failed")

// authenticate runs DH-HMAC-CHAP on a queue whose Connect asked for it
// (NVMe Base 2.0 8.13): Negotiate, Challenge, Reply, Success1 and, when
// the controller is authenticated too, Success2.
func authenticate(ctx context.Context, q *Queue, o *Options, subnqn string) error {
	send := func(b []byte) error {
		_, err := q.Exec(ctx, nvme.AuthSendCmd(0, uint32(len(b))), b, ToController)
		return err
	}
	recv := func(al uint32) ([]byte, error) {
		b := make([]byte, al)
		// AL is an allocation length: a controller may send just the
		// message (SPDK does), nvmet and ours send all of AL.
		r := &Request{SQE: nvme.AuthReceiveCmd(0, al), Data: b, Dir: FromController, AllowShort: true}
		if err := q.Do(ctx, r); err != nil {
			return nil, err
		}
		return b[:r.Received()], nil
	}
	return dhchap(q.qid, o, subnqn, send, recv)
}

// Authenticate runs DH-HMAC-CHAP (as Connect does when the Connect
// response sets AUTHREQ) on a raw queue whose Connect has succeeded, with
// o's HostNQN and secrets: for conformance checks that look at the queue
// before, during and after authentication. qid only names the queue in
// errors.
func (r *Raw) Authenticate(qid uint16, o Options, subnqn string) error {
	// A zero SGL lets Command describe the data: in-capsule for a
	// message, the length of a read for a reply.
	send := func(b []byte) error {
		sqe := nvme.AuthSendCmd(0, uint32(len(b)))
		sqe.DPTR = nvme.SGLDescriptor{}
		_, _, err := r.Command(sqe, b)
		return err
	}
	recv := func(al uint32) ([]byte, error) {
		sqe := nvme.AuthReceiveCmd(0, al)
		sqe.DPTR = nvme.SGLDescriptor{Length: al}
		_, b, err := r.Command(sqe, nil)
		return b, err
	}
	return dhchap(qid, &o, subnqn, send, recv)
}

// dhchap is one DH-HMAC-CHAP transaction over send (Authentication Send
// of a message) and recv (Authentication Receive of up to al bytes).
func dhchap(qid uint16, o *Options, subnqn string, send func([]byte) error, recvAL func(al uint32) ([]byte, error)) error {
	if o.DHCHAPSecret == "" {
		return fmt.Errorf("queue %d: %w: the controller requires authentication and no DH-HMAC-CHAP secret is set (Options.DHCHAPSecret)", qid, ErrAuthFailed)
	}
	key, err := nvme.ParseDHCHAPSecret(o.DHCHAPSecret)
	if err != nil {
		return err
	}
	var ctrlKey *nvme.DHCHAPKey
	if o.DHCHAPCtrlSecret != "" {
		k, err := nvme.ParseDHCHAPSecret(o.DHCHAPCtrlSecret)
		if err != nil {
			return err
		}
		ctrlKey = &k
	}
	tid := uint16(authTID.Add(1))
	fail := func(format string, args ...any) error {
		return fmt.Errorf("queue %d: %w: %s", qid, ErrAuthFailed, fmt.Sprintf(format, args...))
	}
	recv := func(want uint8) ([]byte, error) {
		b, err := recvAL(authBufSize)
		if err != nil {
			return nil, err
		}
		h, err := nvme.PeekAuth(b)
		if err != nil {
			return nil, fail("short message")
		}
		if h.Type == nvme.AuthCommonMessages && h.ID == nvme.AuthFailure1ID {
			var f nvme.AuthFailure
			_ = f.Decode(b)
			return nil, fail("controller sent Failure1 (reason %d, explanation %d)", f.Reason, f.Explanation)
		}
		if h.ID != want || h.TID != tid {
			return nil, fail("unexpected message %#x (transaction %d, want %#x in %d)", h.ID, h.TID, want, tid)
		}
		return b, nil
	}
	// The host's Failure2 for a controller that failed, then the error.
	failure2 := func(why uint8, err error) error {
		m := nvme.AuthFailure{TID: tid, Second: true, Reason: nvme.AuthFailureReasonFailed, Explanation: why}
		_ = send(m.Append(nil))
		return err
	}

	neg := nvme.AuthNegotiate{TID: tid,
		Hashes:   []uint8{nvme.HashSHA256, nvme.HashSHA384, nvme.HashSHA512},
		DHGroups: []uint8{nvme.DHGroupNull, nvme.DHGroupFFDHE2048, nvme.DHGroupFFDHE3072, nvme.DHGroupFFDHE4096, nvme.DHGroupFFDHE6144, nvme.DHGroupFFDHE8192}}
	if err := send(neg.Append(nil)); err != nil {
		return fmt.Errorf("queue %d: AUTH_Negotiate: %w", qid, err)
	}
	b, err := recv(nvme.AuthChallengeID)
	if err != nil {
		return err
	}
	var ch nvme.DHCHAPChallenge
	if err := ch.Decode(b); err != nil {
		return failure2(nvme.AuthIncorrectPayload, fail("challenge: %v", err))
	}
	hl := nvme.HashLen(ch.HashID)
	if hl == 0 || len(ch.C) != hl {
		return failure2(nvme.AuthHashUnusable, fail("challenge with hash %#x and %d-byte value", ch.HashID, len(ch.C)))
	}
	c1 := ch.C
	var reply nvme.DHCHAPReply
	reply.TID = tid
	var sess []byte
	if ch.DHGroup != nvme.DHGroupNull {
		if nvme.DHGroupSize(ch.DHGroup) == 0 {
			return failure2(nvme.AuthDHGroupUnusable, fail("DH group %#x", ch.DHGroup))
		}
		priv, pub, err := nvme.DHKeyPair(ch.DHGroup)
		if err != nil {
			return failure2(nvme.AuthDHGroupUnusable, fail("%v", err))
		}
		if sess, err = nvme.DHSharedSecret(ch.DHGroup, priv, ch.DHV); err != nil {
			return failure2(nvme.AuthIncorrectPayload, fail("%v", err))
		}
		reply.DHV = pub
		c1 = nvme.AugmentedChallenge(ch.HashID, sess, c1)
	} else if len(ch.DHV) != 0 {
		return failure2(nvme.AuthIncorrectPayload, fail("DH value without a DH group"))
	}
	reply.R = nvme.HostResponse(ch.HashID, key.Transformed(o.HostNQN), c1, ch.Seq, tid, 0, o.HostNQN, subnqn)
	var c2 []byte
	if ctrlKey != nil {
		c2 = nvme.RandomBytes(hl)
		reply.CValid, reply.C2, reply.Seq = true, c2, nvme.RandomSeq()
	}
	if err := send(reply.Append(nil)); err != nil {
		return fmt.Errorf("queue %d: DH-HMAC-CHAP_Reply: %w", qid, err)
	}
	b, err = recv(nvme.AuthSuccess1ID)
	if err != nil {
		return err
	}
	var s1 nvme.DHCHAPSuccess1
	if err := s1.Decode(b); err != nil {
		return failure2(nvme.AuthIncorrectPayload, fail("success1: %v", err))
	}
	if ctrlKey == nil {
		return nil
	}
	if sess != nil {
		c2 = nvme.AugmentedChallenge(ch.HashID, sess, c2)
	}
	want := nvme.ControllerResponse(ch.HashID, ctrlKey.Transformed(subnqn), c2, reply.Seq, tid, 0, o.HostNQN, subnqn)
	unchecked := o.dev != nil && o.dev.authCtrlUnchecked
	if !unchecked && (!s1.RValid || !nvme.EqualMAC(s1.R, want)) {
		return failure2(nvme.AuthFailed, fail("the controller's response is wrong: it does not hold the controller key"))
	}
	if o.dev != nil && o.dev.authNoSuccess2 {
		return nil
	}
	s2 := nvme.DHCHAPSuccess2{TID: tid}
	if err := send(s2.Append(nil)); err != nil {
		return fmt.Errorf("queue %d: DH-HMAC-CHAP_Success2: %w", qid, err)
	}
	return nil
}
