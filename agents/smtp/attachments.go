package smtp

import (
	"fmt"
	"mime"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/hossagent/hossagent/agents"
)

// MaxAttachmentBytes bounds the attachments of one message, all together:
// a larger message is refused, permanently, before anything is sent. Ten
// MiB leaves room under every common server's message limit once base64
// has grown it by a third. (The SendGrid adapter refuses the same size.)
const MaxAttachmentBytes = 10 << 20

// maxFilenameBytes bounds an attachment's file name.
const maxFilenameBytes = 200

// checkAttachments refuses attachments over MaxAttachmentBytes in all.
func checkAttachments(files []agents.Attachment) error {
	total := 0
	for _, f := range files {
		total += len(f.Content)
	}
	if total > MaxAttachmentBytes {
		return fmt.Errorf("the attachments are %d bytes, over the %d a message may carry", total, MaxAttachmentBytes)
	}
	return nil
}

// attachmentName is a file name safe to put on the wire: no path separator
// (a receiving client must not read it as a directory), no control
// character (CR and LF would break the header), valid UTF-8, at most
// maxFilenameBytes, and never empty ("attachment").
func attachmentName(s string) string {
	var b strings.Builder
	for i, r := range s {
		if r == utf8.RuneError && !strings.HasPrefix(s[i:], "\uFFFD") {
			r = '_' // a byte that is no UTF-8
		}
		if r == '/' || r == '\\' || unicode.IsControl(r) {
			r = '_'
		}
		if b.Len()+utf8.RuneLen(r) > maxFilenameBytes {
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

// attachmentType is the media type of an attachment, without parameters,
// or application/octet-stream for one that is missing or malformed.
func attachmentType(s string) string {
	t, _, err := mime.ParseMediaType(s)
	if err != nil || !strings.Contains(t, "/") {
		return "application/octet-stream"
	}
	return t
}
