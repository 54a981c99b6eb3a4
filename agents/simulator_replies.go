package agents

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/hossagent/hossagent/db"
)

// The simulator's replies as messages of every class, so that the embedded
// default shows what sorting does: each is a whole message (headers and
// text, a DSN for a bounce), labelled simulated, that takes the sorting
// path real replies take.

// simulatedLabel opens every simulated reply.
const simulatedLabel = "[SIMULATED REPLY] Written by HossAgent's prospect simulator, not by a real person."

// simulatedClasses are the classes the simulator writes, with their
// weights (out of 100).
var simulatedClasses = []struct {
	class  string
	weight int
}{
	{ReplyInterested, 45}, {ReplyNotNow, 12}, {ReplyNotInterested, 12}, {ReplyOutOfOffice, 12},
	{ReplyUnsubscribe, 8}, {ReplyBounce, 6}, {ReplyOther, 5},
}

// simulatedMessage is a reply of a class drawn from rnd to lead l's latest
// e-mail (subject), sent at now.
func simulatedMessage(l *db.Lead, from, subject string, now time.Time, rnd RandSource) []byte {
	pick, class := rnd.IntN(100), ReplyOther
	for _, c := range simulatedClasses {
		if pick < c.weight {
			class = c.class
			break
		}
		pick -= c.weight
	}
	id := "sim-" + strconv.FormatInt(l.ID, 10) + "-" + strconv.FormatInt(now.UnixNano(), 36) + "@simulated.example"
	date := now.UTC().Format(time.RFC1123Z)
	subject = "Re: " + strings.TrimPrefix(nonEmptyOr(subject, "your e-mail"), "Re: ")
	var body, extra string
	switch class {
	case ReplyInterested:
		body = "Hi,\n\nSounds good, this is relevant for us right now. Let's talk this week: what do you need from us to get going?\n\nBest regards"
	case ReplyNotNow:
		body = "Hello,\n\nNot right now, we are busy with a launch. Maybe next quarter.\n\nThanks"
	case ReplyNotInterested:
		body = "Hi,\n\nNo thanks, we are not interested.\n\nRegards"
	case ReplyOutOfOffice:
		back := now.AddDate(0, 0, 7).UTC()
		extra = "Auto-Submitted: auto-replied\r\n"
		subject = "Out of office: " + subject
		body = fmt.Sprintf("I am out of the office until %s, with limited access to e-mail.", back.Format("Monday, 2 January 2006"))
	case ReplyUnsubscribe:
		body = "Please remove me from your list and stop emailing me."
	case ReplyBounce:
		return []byte(simulatedBounce(l.EmailAddr(), id, date))
	default:
		body = "Hi,\n\nWho is this? Please tell me how you got my address.\n\nThanks"
	}
	headers := "From: " + from + "\r\nTo: outreach@simulated.example\r\nSubject: " + headerLine(subject) +
		"\r\nMessage-ID: <" + id + ">\r\nDate: " + date + "\r\nContent-Type: text/plain; charset=utf-8\r\n" + extra
	return []byte(headers + "\r\n" + simulatedLabel + "\n\n" + body + "\n")
}

// simulatedBounce is a standard DSN for addr, as a mail server writes it.
func simulatedBounce(addr, id, date string) string {
	return "From: MAILER-DAEMON@simulated.example (Mail Delivery System)\r\nTo: outreach@simulated.example\r\n" +
		"Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <" + id + ">\r\nDate: " + date + "\r\n" +
		"Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/report; report-type=delivery-status; boundary=\"SIM\"\r\n\r\n" +
		"--SIM\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n" + simulatedLabel + "\r\nYour message could not be delivered.\r\n" +
		"--SIM\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; simulated.example\r\n\r\n" +
		"Final-Recipient: rfc822; " + addr + "\r\nAction: failed\r\nStatus: 5.1.1\r\n" +
		"Diagnostic-Code: smtp; 550 5.1.1 user unknown (simulated)\r\n--SIM--\r\n"
}
