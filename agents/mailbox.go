package agents

import (
	"context"
	"time"
)

// MaxInboundBytes bounds one message read from the replies mailbox: a reply
// or a delivery-status notification is far smaller, and a larger message is
// not read at all (the adapter marks it handled and counts it).
const MaxInboundBytes = 1 << 20

// InboundMail is one message from the replies mailbox, raw.
type InboundMail struct {
	UID uint32 // the server's UID in the mailbox
	Raw []byte // the whole RFC 5322 message, at most MaxInboundBytes
}

// Mailbox reads the replies mailbox (IMAP; agents/imap is the adapter).
type Mailbox interface {
	// Fetch returns up to limit messages not yet marked handled, oldest first.
	Fetch(ctx context.Context, limit int) ([]InboundMail, error)
	// MarkHandled marks the messages handled on the server so Fetch never returns them again.
	MarkHandled(ctx context.Context, uids []uint32) error
	// Wait blocks until the server reports new mail (IDLE where supported) or d passes or ctx ends.
	Wait(ctx context.Context, d time.Duration) error
	Close() error
}
