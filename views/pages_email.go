package views

import (
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/a-h/templ"
)

// UnsubscribePage is the page behind the unsubscribe link of an outreach
// e-mail (/unsubscribe/<token>).
type UnsubscribePage struct {
	Meta
	// Token is the link's token, for the form that acts on it.
	Token string
	// Address is the recipient; the page shows it masked, since anyone
	// holding the link (a forwarded mail) can open it.
	Address string
	// Sender is who stops writing (EMAIL_SENDER_NAME).
	Sender string
	// Done: this request unsubscribed the address, or it had been before.
	Done bool
	// Already: the address was suppressed before this request.
	Already bool
}

// MaskAddress shows enough of an address for its owner to recognise it and
// little to anyone else: "jane@acme.example" becomes "j***@acme.example".
func MaskAddress(addr string) string {
	at := strings.LastIndexByte(addr, '@')
	if at <= 0 {
		return "***"
	}
	r, _ := utf8.DecodeRuneInString(addr)
	return string(r) + "***" + addr[at:]
}

// unsubscribeURL is the address the unsubscribe form posts to.
func unsubscribeURL(token string) templ.SafeURL {
	return templ.SafeURL("/unsubscribe/" + url.PathEscape(token))
}

// senderOr is the sender's name, or a neutral word when none is set.
func senderOr(name string) string {
	if strings.TrimSpace(name) == "" {
		return "us"
	}
	return name
}
