package db

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"strings"
)

// Replies are what prospects answer to outreach, simulated or inbound. Each
// is stored, and its lead moved to responded, in one transaction; an inbound
// message delivered twice is stored once (replyDedupeKey).

// NewReply is an inbound answer to outreach.
type NewReply struct {
	LeadID                  int64
	FromAddr, Subject, Body string
	Simulated               bool
}

// unsortedReason is the reason of a reply stored by a path that does not
// sort (RecordReply, RecordInboundReply): it counts as an answer.
const unsortedReason = "not sorted on this path: every reply counts as an answer"

// RecordReply stores a reply and moves its lead from new or contacted to
// responded, ending its sequence, in one transaction: ApplyReply for a reply
// taken as an answer. A simulated reply is stored only for a lead that is
// contacted and has no reply yet, so the simulator never touches a lead
// twice nor one that moved on; it reports whether it stored the reply.
func (d *DB) RecordReply(ctx context.Context, in NewReply) (bool, error) {
	out, err := d.ApplyReply(ctx, SortedReply{LeadID: in.LeadID, FromAddr: in.FromAddr, Subject: in.Subject, Body: in.Body,
		Simulated: in.Simulated, Class: ReplyInterested, Reason: unsortedReason, By: "rules"})
	return out.Stored, err
}

// InboundReply is an e-mail that arrived at the inbound endpoint.
type InboundReply struct {
	FromAddr, Subject, Body string
	// MessageID is the message's Message-ID header ("" when it has none):
	// a second delivery of the same message is stored once.
	MessageID string
}

// InboundResult says what an inbound reply did.
type InboundResult struct {
	// LeadID is the lead the sender is, 0 when no lead has the address
	// (then nothing was stored).
	LeadID int64
	// Responded: the lead moved to responded with this reply.
	Responded bool
	// Duplicate: this message was stored before (the same Message-ID, or
	// without one the same sender, subject and text); nothing changed.
	Duplicate bool
}

// replyDedupeKey names the message a reply comes from: its Message-ID
// (without the angle brackets and spaces around it), or, when it has none,
// its sender, subject and text. Hashed, so the key is short whatever the
// header or the text holds.
func replyDedupeKey(addr string, in InboundReply) string {
	id := strings.Trim(strings.TrimSpace(in.MessageID), "<> \t")
	if id != "" {
		sum := sha256.Sum256([]byte(id))
		return "mid:" + hex.EncodeToString(sum[:])
	}
	h := sha256.New()
	for _, part := range []string{addr, in.Subject, in.Body} {
		// Each part's length first: no two different triples hash alike.
		h.Write(binary.BigEndian.AppendUint64(nil, uint64(len(part))))
		h.Write([]byte(part))
	}
	return "sum:" + hex.EncodeToString(h.Sum(nil))
}

// RecordInboundReply stores a real (not simulated) reply from the lead whose
// e-mail is the sender's and moves that lead from new or contacted to
// responded (ApplyReply, for a reply taken as an answer). A sender who is no
// lead is not stored: mail from strangers never creates leads. A message
// stored before (see replyDedupeKey) is not stored again and changes
// nothing: Duplicate.
func (d *DB) RecordInboundReply(ctx context.Context, in InboundReply) (InboundResult, error) {
	addr := strings.ToLower(strings.TrimSpace(in.FromAddr))
	id, err := d.LeadIDByEmail(ctx, addr)
	if err != nil || id == 0 {
		return InboundResult{}, err
	}
	out, err := d.ApplyReply(ctx, SortedReply{LeadID: id, FromAddr: addr, Subject: in.Subject, Body: in.Body, InboundID: in.MessageID,
		Class: ReplyInterested, Reason: unsortedReason, By: "rules"})
	if err != nil {
		return InboundResult{}, err
	}
	return InboundResult{LeadID: id, Responded: out.LeadMoved == LeadResponded, Duplicate: !out.Stored}, nil
}
