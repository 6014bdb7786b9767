package probe

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// The Dubbo exchange header (ExchangeCodec in Apache Dubbo 2.7 and 3.x): magic 0xdabb, a flag
// byte (request 0x80, two-way 0x40, event 0x20, low 5 bits the serialization id), a status byte
// (responses), an 8-byte request id and a 4-byte body length, all big-endian.
const (
	dubboHeaderLen = 16
	dubboMagic     = 0xdabb
	flagRequest    = 0x80
	flagTwoWay     = 0x40
	flagEvent      = 0x20
	hessian2       = 2    // serialization id of hessian2, which every Dubbo provider decodes
	hessian2Null   = 0x4e // 'N': hessian2's null, the body of a heartbeat
	statusOK       = 20
	// maxSkip bounds what is read past frames that are not the answer (a provider's own
	// heartbeat request arriving first, say): a probe reads a handshake, not a stream.
	maxSkip = 64 << 10
	// maxFrames bounds the number of frames read while waiting for the answer.
	maxFrames = 4
)

// HeartbeatRequest is the 17 bytes of a Dubbo heartbeat request with the given id: the header
// with flags request|two-way|event and hessian2, and the hessian2 null body. A provider's
// HeartbeatHandler answers it with a heartbeat response of the same id; nothing reaches the
// application.
func HeartbeatRequest(id uint64) []byte {
	b := make([]byte, dubboHeaderLen+1)
	binary.BigEndian.PutUint16(b, dubboMagic)
	b[2] = flagRequest | flagTwoWay | flagEvent | hessian2
	binary.BigEndian.PutUint64(b[4:], id)
	binary.BigEndian.PutUint32(b[12:], 1)
	b[16] = hessian2Null
	return b
}

// DubboHeader is a decoded Dubbo exchange header.
type DubboHeader struct {
	Flag   byte
	Status byte
	ID     uint64
	Length uint32
}

// Request says the frame is a request (else a response).
func (h DubboHeader) Request() bool { return h.Flag&flagRequest != 0 }

// Event says the frame is an event (heartbeats are).
func (h DubboHeader) Event() bool { return h.Flag&flagEvent != 0 }

// ErrNotDubbo says the peer answered with bytes that are not a Dubbo exchange header.
var ErrNotDubbo = errors.New("the answer is not a Dubbo frame (no 0xdabb magic)")

// ParseDubboHeader decodes the first 16 bytes of b. Short input is io.ErrUnexpectedEOF.
func ParseDubboHeader(b []byte) (DubboHeader, error) {
	if len(b) < dubboHeaderLen {
		return DubboHeader{}, io.ErrUnexpectedEOF
	}
	if binary.BigEndian.Uint16(b) != dubboMagic {
		return DubboHeader{}, ErrNotDubbo
	}
	return DubboHeader{Flag: b[2], Status: b[3], ID: binary.BigEndian.Uint64(b[4:]), Length: binary.BigEndian.Uint32(b[12:])}, nil
}

// ReadHeartbeatResponse reads frames from r until the heartbeat response to id. It accepts any
// serialization id in the answer (Dubbo 3.2+ answers with the channel's serialization, which may
// be fastjson2) and does not decode the body, which it skips. It fails on a response to id with
// a status other than OK, on anything that is not a Dubbo frame, and after maxFrames frames or
// maxSkip bytes of other frames.
func ReadHeartbeatResponse(r io.Reader, id uint64) (DubboHeader, error) {
	var hdr [dubboHeaderLen]byte
	skipped := 0
	for range maxFrames {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return DubboHeader{}, err
		}
		h, err := ParseDubboHeader(hdr[:])
		if err != nil {
			return h, err
		}
		if !h.Request() && h.ID == id {
			if h.Status != statusOK {
				return h, fmt.Errorf("the Dubbo provider answered the heartbeat with status %d, not %d (OK)", h.Status, statusOK)
			}
			return h, nil
		}
		// Another frame (the provider's own heartbeat, a late answer): skip its body, within bounds.
		skipped += dubboHeaderLen + int(min(h.Length, maxSkip+1))
		if h.Length > maxSkip || skipped > maxSkip {
			return h, fmt.Errorf("no heartbeat response within %d bytes of other Dubbo frames", maxSkip)
		}
		if _, err := io.CopyN(io.Discard, r, int64(h.Length)); err != nil {
			return h, err
		}
	}
	return DubboHeader{}, fmt.Errorf("no heartbeat response within %d Dubbo frames", maxFrames)
}

// HTTP/2 (RFC 9113): a client opens with the 24-byte preface and a SETTINGS frame; the server
// must send a SETTINGS frame first. Triple in Dubbo 3.2 speaks h2c with prior knowledge.
const (
	h2Preface     = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
	h2FrameHeader = 9
	h2Settings    = 0x4
	h2FlagAck     = 0x1
	// h2MaxSettings bounds the server's SETTINGS frame (RFC 9113's default max frame size).
	h2MaxSettings = 16384
)

// H2Preface is what the probe sends to a tri:// provider: the connection preface and an empty
// SETTINGS frame.
func H2Preface() []byte {
	b := make([]byte, 0, len(h2Preface)+h2FrameHeader)
	b = append(b, h2Preface...)
	return append(b, 0, 0, 0, h2Settings, 0, 0, 0, 0, 0)
}

// ErrNotHTTP2 says the peer's first bytes are not an HTTP/2 SETTINGS frame.
var ErrNotHTTP2 = errors.New("the answer is not an HTTP/2 SETTINGS frame")

// ParseH2Settings checks that b begins with a server's initial SETTINGS frame header: type
// SETTINGS, no ACK flag, stream 0, a length that is a multiple of 6 and at most 16384. It
// returns the frame's payload length.
func ParseH2Settings(b []byte) (int, error) {
	if len(b) < h2FrameHeader {
		return 0, io.ErrUnexpectedEOF
	}
	n := int(b[0])<<16 | int(b[1])<<8 | int(b[2])
	typ, flags, stream := b[3], b[4], binary.BigEndian.Uint32(b[5:])&0x7fffffff
	if typ != h2Settings || flags&h2FlagAck != 0 || stream != 0 || n%6 != 0 || n > h2MaxSettings {
		return n, ErrNotHTTP2
	}
	return n, nil
}

// ReadH2Settings reads and checks the server's first frame header from r.
func ReadH2Settings(r io.Reader) error {
	var hdr [h2FrameHeader]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return err
	}
	_, err := ParseH2Settings(hdr[:])
	return err
}
