package app

import "strings"

// cleanText makes text from outside that cannot be refused (an e-mail
// forwarded by the mail provider, a name for the audit log) safe to store
// and show: NUL bytes are dropped and invalid UTF-8 becomes U+FFFD.
func cleanText(s string) string {
	if strings.IndexByte(s, 0) >= 0 {
		s = strings.ReplaceAll(s, "\x00", "")
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}
