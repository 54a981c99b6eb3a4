package agents

// What every real mailer does with an OutgoingMail's attachments.

import (
	"fmt"
	"mime"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxAttachmentBytes bounds the attachments of one message, all together:
// a larger message is refused, permanently, before anything is sent. Ten
// MiB leaves room under every common server's message limit once base64
// has grown it by a third. Both mailers (SMTP and SendGrid) refuse it.
const MaxAttachmentBytes = 10 << 20

// MaxFilenameBytes bounds an attachment's file name.
const MaxFilenameBytes = 200

// CheckAttachments refuses attachments over MaxAttachmentBytes in all.
func CheckAttachments(files []Attachment) error {
	total := 0
	for _, f := range files {
		total += len(f.Content)
	}
	if total > MaxAttachmentBytes {
		return fmt.Errorf("the attachments are %d bytes, over the %d a message may carry", total, MaxAttachmentBytes)
	}
	return nil
}

// AttachmentName is a file name safe to put on the wire: no path separator
// (a receiving client must not read it as a directory), no control
// character (CR and LF would break the header), valid UTF-8, at most
// MaxFilenameBytes, and never empty ("attachment").
func AttachmentName(s string) string {
	var b strings.Builder
	for i, r := range s {
		if r == utf8.RuneError && !strings.HasPrefix(s[i:], "\uFFFD") {
			r = '_' // a byte that is no UTF-8
		}
		if r == '/' || r == '\\' || unicode.IsControl(r) {
			r = '_'
		}
		if b.Len()+utf8.RuneLen(r) > MaxFilenameBytes {
			break
		}
		b.WriteRune(r)
	}
	name := strings.TrimSpace(b.String())
	if strings.Trim(name, ". ") == "" {
		return "attachment"
	}
	return name
}

// AttachmentType is the media type of an attachment, without parameters,
// or application/octet-stream for one that is missing or malformed.
func AttachmentType(s string) string {
	t, _, err := mime.ParseMediaType(s)
	if err != nil || !strings.Contains(t, "/") {
		return "application/octet-stream"
	}
	return t
}
