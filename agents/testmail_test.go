package agents

import "fmt"

// testMail is an outreach message as a mailer receives it, with the
// unsubscribe headers. The SMTP adapter's tests (agents/smtp) keep their own
// copy; the mailer tests still in this package use this one.
func testMail(to string, id int64) OutgoingMail {
	return OutgoingMail{
		To: to, From: "outreach@hossagent.example", FromName: "Hoss Research", Subject: "A note for Delta",
		Body: "Hi Dana,\n\nHello there.\n", OutboxID: id,
		Headers: map[string]string{
			"List-Unsubscribe":      "<https://hoss.example/unsubscribe/tok" + fmt.Sprint(id) + ">",
			"List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
		},
	}
}
