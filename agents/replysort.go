package agents

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/hossagent/hossagent/db"
)

// Sorting a parsed reply by rules: what it is (interested, not now, …),
// why (the rule that fired, in words an operator reads), and what the
// reply cycle needs to act on it (the return date of an out-of-office, the
// addresses of a bounce). English only; the LLM executor, when configured,
// is the lead's second opinion, not this file's.

// The reply classes: the store's (db.Reply*), whose CHECK they are.
const (
	ReplyInterested    = db.ReplyInterested
	ReplyNotNow        = db.ReplyNotNow
	ReplyNotInterested = db.ReplyNotInterested
	ReplyOutOfOffice   = db.ReplyOutOfOffice
	ReplyUnsubscribe   = db.ReplyUnsubscribe
	ReplyBounce        = db.ReplyBounce
	ReplyOther         = db.ReplyOther
)

// ReplyClasses are the classes, in the order an operator picks from.
var ReplyClasses = []string{ReplyInterested, ReplyNotNow, ReplyNotInterested, ReplyOutOfOffice, ReplyUnsubscribe, ReplyBounce, ReplyOther}

// ValidReplyClass says whether c is one of ReplyClasses (an operator's
// change of a decision must be).
func ValidReplyClass(c string) bool {
	for _, v := range ReplyClasses {
		if c == v {
			return true
		}
	}
	return false
}

// Sorted is SortReply's decision.
type Sorted struct {
	// Class is one of the Reply* constants.
	Class string
	// Reason says which rule fired, as a sentence for the admin
	// ("phrase \"please remove me\"", "DSN: 5.1.1 failed for x@y"); never "".
	Reason string
	// ReturnDate is the date an out-of-office says its sender is back, at
	// midnight in now's location; zero when none is stated (or only an
	// ambiguous one, like "12/01").
	ReturnDate time.Time
	// BounceRecipients are the addresses a DSN reports: the failed ones for
	// a bounce, the delayed ones for a delay (Class "other").
	BounceRecipients []string
	// Hard is true for a permanent failure (status 5.x.x): the address is
	// bad and must be suppressed. A bounce with Hard false is a message
	// that gave up after retries (4.x.x, "failed"): not delivered, but the
	// address may be fine.
	Hard bool
	// Automatic is true when a program sent the message (a DSN, an
	// auto-reply header, an out-of-office subject): it is no answer from
	// the person, and should not stop a sequence unless its class says so.
	Automatic bool
	// Unsure is true when the rules could not tell what a person wrote: no
	// rule matched, or one phrase decided a long message. Only such a
	// decision goes to the LLM for a second opinion (RepliesCycle); a DSN,
	// an automatic reply, a complaint, an unsubscribe phrasing and a
	// one-word answer are never unsure.
	Unsure bool
	// Complaint is true for a feedback-loop report (ARF): a recipient
	// marked our e-mail as spam (ParsedReply.Complaint says who).
	Complaint bool
}

// unsureWords is the length, in words, past which a single phrase is weak
// evidence of what a message says ("interested" in a long answer that may
// be about something else).
const unsureWords = 60

// maxSortText bounds the text the phrase rules read, in bytes.
const maxSortText = 8 << 10

// SortReply sorts p by rules, the first that fires wins:
//
//  1. a DSN: a permanent failure is a bounce; a delay (4.x.x, "delayed")
//     is "other" (not yet a bounce), as is a success notification;
//  2. an automatic reply (Auto-Submitted other than "no", X-Autoreply,
//     X-Autorespond, Precedence: auto_reply, or an "Automatic reply:" /
//     "Out of Office" subject): out of office with out-of-office wording
//     or a return date, else "other";
//  3. unsubscribe phrasings ("unsubscribe", "remove me", "take me off",
//     "stop emailing", "do not contact", a one-word "stop");
//  4. not interested ("not interested" and "interested" negated, "no
//     thanks", "we're all set", "not a fit", a one-word "no") — but when
//     the same text asks to be contacted later ("reach out in", "circle
//     back", "next quarter"), it is not now;
//  5. not now ("not right now", "maybe next quarter", "reach out in",
//     "circle back", "busy until");
//  6. interested ("sounds good", "interested", "let's talk", "book a
//     call", "send more info", "yes", "what's the price"), unless negated
//     within its clause ("I don't think it sounds good");
//  7. other.
//
// The phrase rules read p.NewText (or StripQuoted(p.Text) when NewText is
// empty), so a quoted "unsubscribe" footer of ours is never the sender's.
// Negation is looked for in the same clause only: "No, let's talk next
// week" is interested (the comma ends the "no"), "not really interested"
// is not interested. With no new text at all, a subject the sender wrote
// (not "Re: …") is read instead, for the common empty reply titled
// "Unsubscribe". now sets the year of a return date that names none.
func SortReply(p ParsedReply, now time.Time) Sorted {
	if p.Complaint != nil {
		return sortComplaint(*p.Complaint)
	}
	if p.DSN != nil {
		if s, ok := sortDSN(p); ok {
			return s
		}
	}
	switch reportType(p.Headers.ContentType) {
	case "disposition-notification":
		return Sorted{Class: ReplyOther, Automatic: true, Reason: "a read receipt (multipart/report; report-type=disposition-notification)"}
	case "feedback-report":
		return Sorted{Class: ReplyOther, Automatic: true, Reason: "a feedback report (multipart/report; report-type=feedback-report): a spam complaint"}
	}
	if s, ok := sortAutoReply(p, now); ok {
		return s
	}
	text := p.NewText
	if strings.TrimSpace(text) == "" {
		text = StripQuoted(p.Text)
	}
	where := ""
	if strings.TrimSpace(text) == "" {
		subject := strings.TrimSpace(p.Subject)
		if subject == "" || replyPrefix.MatchString(subject) {
			return Sorted{Class: ReplyOther, Reason: "no new text (only quoted history, or empty)"}
		}
		text, where = subject, " in the subject"
	}
	text = normalizeReply(clipBytes(text, maxSortText))
	s := sortPhrases(text, where)
	switch {
	case s.Class == ReplyOther:
		s.Unsure = true
	case s.Class != ReplyUnsubscribe && !strings.HasPrefix(s.Reason, "one-word") && len(strings.Fields(text)) > unsureWords:
		s.Unsure = true
		s.Reason += fmt.Sprintf(" (one phrase in %d words)", len(strings.Fields(text)))
	}
	return s
}

// sortComplaint sorts a feedback-loop report: a complaint, which stops all
// mail to the address like an unsubscribe request, and more (the address is
// suppressed as a complaint).
func sortComplaint(c Complaint) Sorted {
	what := c.FeedbackType
	switch what {
	case "":
		what = "unspecified"
	case "not-spam", "auth-failure", "virus":
		// No one complained: a message marked as not spam (RFC 6650), an
		// authentication failure (RFC 6591) or a virus report.
		return Sorted{Class: ReplyOther, Automatic: true,
			Reason: "a feedback report of type " + what + " (multipart/report; report-type=feedback-report): not a complaint"}
	}
	reason := "spam complaint: a feedback report (ARF, feedback type " + what
	if c.UserAgent != "" {
		reason += ", from " + clipBytes(c.UserAgent, 80)
	}
	reason += ")"
	if len(c.Recipients) > 0 {
		reason += " about " + strings.Join(c.Recipients, ", ")
	} else {
		reason += " with the recipient redacted"
	}
	return Sorted{Class: ReplyUnsubscribe, Automatic: true, Complaint: true, Reason: reason}
}

// replyPrefix is a subject's "Re:" / "Fwd:" prefix.
var replyPrefix = regexp.MustCompile(`(?i)^\s*(re|fw|fwd|aw|sv|antw)\s*(\[\d+\])?\s*:`)

// sortDSN sorts a delivery-status notification; false when it reports
// nothing sortable (no recipient with an action or status).
func sortDSN(p ParsedReply) (Sorted, bool) {
	kind := "DSN"
	if !p.DSN.Standard {
		kind = "non-standard bounce from " + orUnknown(p.From)
	}
	var failed, delayed, delivered []DSNRecipient
	for _, r := range p.DSN.Recipients {
		switch {
		case r.Action == "failed" || (r.Action == "" && strings.HasPrefix(r.Status, "5.")):
			failed = append(failed, r)
		case r.Action == "delayed" || (r.Action == "" && strings.HasPrefix(r.Status, "4.")):
			delayed = append(delayed, r)
		case r.Action == "delivered" || r.Action == "relayed" || r.Action == "expanded" || strings.HasPrefix(r.Status, "2."):
			delivered = append(delivered, r)
		}
	}
	switch {
	case len(failed) > 0:
		s := Sorted{Class: ReplyBounce, Automatic: true, BounceRecipients: addresses(failed)}
		for _, r := range failed {
			s.Hard = s.Hard || strings.HasPrefix(r.Status, "5.")
		}
		s.Reason = kind + ": " + dsnSummary(failed[0], "failed") + more(len(failed))
		if !s.Hard {
			s.Reason += " (gave up after retries: not a permanent failure)"
		}
		return s, true
	case len(delayed) > 0:
		return Sorted{Class: ReplyOther, Automatic: true, BounceRecipients: addresses(delayed),
			Reason: kind + ": " + dsnSummary(delayed[0], "delayed") + more(len(delayed)) + " (a delay, not a bounce yet)"}, true
	case len(delivered) > 0:
		return Sorted{Class: ReplyOther, Automatic: true,
			Reason: kind + ": " + dsnSummary(delivered[0], delivered[0].Action) + more(len(delivered)) + " (a success notification)"}, true
	}
	return Sorted{}, false
}

func dsnSummary(r DSNRecipient, action string) string {
	s := orUnknown(r.Status) + " " + orUnknown(action) + " for " + orUnknown(r.Address())
	if r.DiagnosticCode != "" {
		s += " (" + clipBytes(r.DiagnosticCode, 160) + ")"
	}
	return s
}

func more(n int) string {
	if n > 1 {
		return fmt.Sprintf(" and %d more", n-1)
	}
	return ""
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

func addresses(rs []DSNRecipient) []string {
	var out []string
	for _, r := range rs {
		if a := r.Address(); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// autoHeader is the header that marks p as sent by a program, as words for
// the reason, or "".
func autoHeader(h ReplyHeaders) string {
	switch v := strings.ToLower(strings.TrimSpace(h.AutoSubmitted)); {
	case v != "" && !strings.HasPrefix(v, "no"):
		return "Auto-Submitted: " + firstWord(strings.Trim(v, ";")) + " header"
	}
	if v := strings.ToLower(strings.TrimSpace(h.XAutoreply)); v != "" && v != "no" && v != "false" && v != "0" {
		return "X-Autoreply header"
	}
	if v := strings.ToLower(strings.TrimSpace(h.XAutorespond)); v != "" && v != "no" && v != "false" && v != "0" {
		return "X-Autorespond header"
	}
	if v := strings.ToLower(strings.TrimSpace(h.Precedence)); v == "auto_reply" || v == "auto-reply" {
		return "Precedence: auto_reply header"
	}
	return ""
}

// oooSubjectRe is the subject of an out-of-office reply.
var oooSubjectRe = regexp.MustCompile(`(?i)^\s*(automatic reply|auto(matic)?[ -]?reply|autoreply|auto-response|out of (the )?office|ooo|auto)\s*:|\bout of (the )?office\b|\bon (vacation|holiday|leave)\b`)

// oooPhrases are the words of an out-of-office message.
var oooPhrases = []string{
	"out of the office", "out of office", "out-of-office", "on vacation", "on holiday", "on holidays",
	"on annual leave", "annual leave", "parental leave", "maternity leave", "paternity leave", "on leave",
	"away from the office", "away from my desk", "away from the office", "limited access to email",
	"limited access to e-mail", "no access to email", "without access to email", "currently away",
	"i am away", "i'm away", "i am currently travelling", "i am currently traveling", "back in the office",
	"return to the office", "returning to the office", "will be back", "i will return", "automatic reply",
}

// sortAutoReply sorts a message a program sent; false when nothing says a
// program sent it.
func sortAutoReply(p ParsedReply, now time.Time) (Sorted, bool) {
	header := autoHeader(p.Headers)
	oooSubject := oooSubjectRe.MatchString(p.Subject)
	if header == "" && !oooSubject {
		return Sorted{}, false
	}
	text := normalizeReply(clipBytes(p.NewText, maxSortText))
	if text == "" {
		text = normalizeReply(clipBytes(StripQuoted(p.Text), maxSortText))
	}
	why := header
	if why == "" {
		why = fmt.Sprintf("subject %q", clipBytes(p.Subject, 80))
	}
	ret := returnDate(normalizeReply(p.Subject)+"\n"+text, now)
	if phrase, _, ok := findPhrase(text, oooPhrases, false); ok {
		return Sorted{Class: ReplyOutOfOffice, Automatic: true, ReturnDate: ret,
			Reason: fmt.Sprintf("%s and out-of-office wording %q%s", why, phrase, returnNote(ret))}, true
	}
	if oooSubject {
		return Sorted{Class: ReplyOutOfOffice, Automatic: true, ReturnDate: ret,
			Reason: fmt.Sprintf("%s (out of office)%s", why, returnNote(ret))}, true
	}
	if !ret.IsZero() {
		return Sorted{Class: ReplyOutOfOffice, Automatic: true, ReturnDate: ret,
			Reason: fmt.Sprintf("%s and a stated return date%s", why, returnNote(ret))}, true
	}
	return Sorted{Class: ReplyOther, Automatic: true,
		Reason: why + ": an automatic reply without out-of-office wording"}, true
}

func returnNote(t time.Time) string {
	if t.IsZero() {
		return ", no return date stated"
	}
	return ", back " + t.Format("2006-01-02")
}

// The phrase lists, each in the order they are tried (the longer first, so
// that the reason quotes the most telling one). Lower case, straight
// apostrophes.
var (
	unsubscribePhrases = []string{
		"please remove me", "remove me", "remove us", "remove my email", "remove my address",
		"take me off", "take us off", "unsubscribe", "stop emailing", "stop e-mailing", "stop mailing",
		"stop contacting", "stop sending", "stop spamming", "do not contact", "don't contact",
		"do not email", "don't email", "do not e-mail", "don't e-mail", "do not send", "don't send me",
		"opt me out", "opt out", "no more emails", "no more e-mails",
	}
	notInterestedPhrases = []string{
		"not interested", "no longer interested", "uninterested", "no thanks", "no thank you",
		"no, thanks", "no, thank you", "we're all set", "we are all set", "i'm all set", "i am all set",
		"not a fit", "not a good fit", "not the right fit", "not for us",
		"not for me", "we'll pass", "i'll pass", "we will pass", "we don't need",
		"we do not need", "i don't need", "not looking for", "we already have a provider",
		"we already have someone", "we already work with", "we already use",
		"not something we need", "please don't follow up", "not relevant",
	}
	laterPhrases = []string{
		"maybe next quarter", "next quarter", "next year", "reach out in", "reach back out in",
		"circle back", "check back", "follow up in", "ping me in", "try again in", "try me in",
		"get back to me in", "contact me in", "contact us in", "in a few months", "in a couple of months",
		"later this year", "after the holidays", "busy until",
	}
	notNowPhrases = append([]string{
		"not right now", "not now", "not at the moment", "not at this time", "not at this point",
		"not this quarter", "not this year", "maybe later", "bad timing", "timing isn't right",
		"timing is not right", "not the right time", "not a priority", "no budget",
	}, laterPhrases...)
	interestedPhrases = []string{
		"sounds good", "sounds great", "sounds interesting", "interested", "let's talk", "lets talk",
		"let's chat", "lets chat", "let's connect", "let's meet", "let's set up", "let's schedule",
		"let's do it", "book a call", "book a meeting", "schedule a call", "set up a call",
		"hop on a call", "jump on a call", "give me a call", "call me", "send more info",
		"send me more", "send over", "more info", "more information", "more details", "tell me more",
		"learn more", "happy to chat", "happy to talk", "happy to connect", "what's the price",
		"what is the price", "what's the cost", "what does it cost", "how much", "pricing",
		"what do you charge", "count me in", "sign me up", "i'm in", "go ahead", "yes",
		"when are you free", "are you free",
		"what times work", "my calendar",
	}
	oneWordYes = []string{"yes", "yep", "yeah", "sure", "ok", "okay", "absolutely", "definitely", "please do", "yes please", "sure thing", "of course"}
	// laterRe is a request to be contacted months from now.
	laterRe            = regexp.MustCompile(`\b(in|after) (a few|a couple of|a couple|\d{1,2}|one|two|three|four|five|six|several) (months?|quarters?)\b`)
	oneWordNo          = []string{"no", "nope", "nah", "no thanks", "no thank you", "pass"}
	oneWordUnsubscribe = []string{"stop", "remove", "stop please", "please stop"}
	negators           = map[string]bool{
		"not": true, "no": true, "never": true, "don't": true, "dont": true, "doesn't": true, "didn't": true,
		"isn't": true, "aren't": true, "wasn't": true, "weren't": true, "won't": true, "wouldn't": true,
		"can't": true, "cannot": true, "couldn't": true, "nor": true, "neither": true, "hardly": true,
		"unlikely": true, "without": true,
	}
)

// sortPhrases applies the phrase rules (3–7) to normalised text.
func sortPhrases(text, where string) Sorted {
	reason := func(class, what string) Sorted {
		return Sorted{Class: class, Reason: what + where}
	}
	if w, ok := oneWord(text, oneWordUnsubscribe); ok {
		return reason(ReplyUnsubscribe, fmt.Sprintf("one-word reply %q", w))
	}
	if phrase, _, ok := findPhrase(text, unsubscribePhrases, false); ok {
		return reason(ReplyUnsubscribe, fmt.Sprintf("phrase %q", phrase))
	}
	notInterested := ""
	if w, ok := oneWord(text, oneWordNo); ok {
		notInterested = fmt.Sprintf("one-word reply %q", w)
	} else if phrase, _, ok := findPhrase(text, notInterestedPhrases, false); ok {
		notInterested = fmt.Sprintf("phrase %q", phrase)
	} else if ctx, ok := negatedInterest(text); ok {
		notInterested = fmt.Sprintf("negated \"interested\" (%q)", ctx)
	}
	if notInterested != "" {
		if later, ok := laterPhrase(text); ok {
			return reason(ReplyNotNow, fmt.Sprintf("%s, but asks to be contacted later: phrase %q", notInterested, later))
		}
		return reason(ReplyNotInterested, notInterested)
	}
	if phrase, _, ok := findPhrase(text, notNowPhrases, false); ok {
		return reason(ReplyNotNow, fmt.Sprintf("phrase %q", phrase))
	}
	if later, ok := laterPhrase(text); ok {
		return reason(ReplyNotNow, fmt.Sprintf("phrase %q", later))
	}
	if w, ok := oneWord(text, oneWordYes); ok {
		return reason(ReplyInterested, fmt.Sprintf("one-word reply %q", w))
	}
	if phrase, _, ok := findPhrase(text, interestedPhrases, true); ok {
		return reason(ReplyInterested, fmt.Sprintf("phrase %q", phrase))
	}
	return reason(ReplyOther, "no rule matched")
}

// laterPhrase finds a request to be contacted later.
func laterPhrase(text string) (string, bool) {
	if phrase, _, ok := findPhrase(text, laterPhrases, false); ok {
		return phrase, true
	}
	if m := laterRe.FindString(text); m != "" {
		return m, true
	}
	return "", false
}

// normalizeReply is s lower-cased, typographic quotes straightened, runs of
// spaces collapsed, and "Sent from my …" lines dropped; lines are kept.
func normalizeReply(s string) string {
	s = strings.ToLower(s)
	s = strings.NewReplacer("\u2019", "'", "\u2018", "'", "\u201c", `"`, "\u201d", `"`, "\u00a0", " ").Replace(s)
	var lines []string
	for line := range strings.SplitSeq(s, "\n") {
		line = strings.Join(strings.Fields(line), " ")
		if line == "" || strings.HasPrefix(line, "sent from my ") || strings.HasPrefix(line, "get outlook for ") {
			continue
		}
		lines = append(lines, line)
	}
	return strings.Join(lines, "\n")
}

// oneWord says whether text is only one of words (its punctuation aside),
// perhaps followed by a short sign-off line (a name).
func oneWord(text string, words []string) (string, bool) {
	lines := strings.Split(text, "\n")
	if len(lines) == 0 || len(lines) > 3 {
		return "", false
	}
	first := strings.TrimFunc(lines[0], func(r rune) bool { return unicode.IsPunct(r) || unicode.IsSpace(r) })
	first = strings.Join(strings.FieldsFunc(first, func(r rune) bool { return r == ',' || unicode.IsSpace(r) }), " ")
	rest := 0
	for _, l := range lines[1:] {
		rest += len(strings.Fields(l))
	}
	if rest > 3 {
		return "", false
	}
	for _, w := range words {
		if first == w {
			return w, true
		}
	}
	return "", false
}

// findPhrase finds the first of phrases in text at word boundaries; with
// negatable, a match with a negator among the three words before it in
// its clause is skipped. It returns the phrase and where it was found.
func findPhrase(text string, phrases []string, negatable bool) (string, int, bool) {
	for _, ph := range phrases {
		for from := 0; from < len(text); {
			i := strings.Index(text[from:], ph)
			if i < 0 {
				break
			}
			i += from
			from = i + len(ph)
			if !wordBoundary(text, i, i+len(ph)) {
				continue
			}
			if negatable && negated(text, i) {
				continue
			}
			return ph, i, true
		}
	}
	return "", 0, false
}

// wordBoundary says whether text[i:j] is neither preceded nor followed by a
// letter or digit.
func wordBoundary(text string, i, j int) bool {
	if i > 0 {
		r := lastRune(text[:i])
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			return false
		}
	}
	if j < len(text) {
		r := []rune(text[j:min(len(text), j+4)])
		if len(r) > 0 && (unicode.IsLetter(r[0]) || unicode.IsDigit(r[0])) {
			return false
		}
	}
	return true
}

func isWordRune(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }

func lastRune(s string) rune {
	r := []rune(s[max(0, len(s)-4):])
	if len(r) == 0 {
		return 0
	}
	return r[len(r)-1]
}

// negated says whether a negator is among the three words before text[i:]
// in the same clause (a clause ends at . , ; : ! ? or a line end).
func negated(text string, i int) bool {
	clause := text[:i]
	if k := strings.LastIndexAny(clause, ".,;:!?\n"); k >= 0 {
		clause = clause[k+1:]
	}
	words := strings.FieldsFunc(clause, func(r rune) bool { return !unicode.IsLetter(r) && r != '\'' })
	for _, w := range words[max(0, len(words)-3):] {
		if negators[strings.Trim(w, "'")] || negators[w] {
			return true
		}
	}
	return false
}

// negatedInterest finds "interested" negated in its clause ("not really
// interested", "isn't interested") and returns the words around it.
func negatedInterest(text string) (string, bool) {
	for from := 0; from < len(text); {
		i := strings.Index(text[from:], "interest")
		if i < 0 {
			return "", false
		}
		i += from
		from = i + len("interest")
		if (i > 0 && isWordRune(lastRune(text[:i]))) || !negated(text, i) {
			continue
		}
		start := max(0, i-30)
		if k := strings.LastIndexAny(text[start:i], ".,;:!?\n"); k >= 0 {
			start += k + 1
		}
		end := min(len(text), i+len("interested"))
		for end > i && !utf8Start(text, end) {
			end--
		}
		return strings.TrimSpace(text[start:end]), true
	}
	return "", false
}

func utf8Start(s string, i int) bool {
	return i >= len(s) || s[i]&0xC0 != 0x80
}

// Return dates. The patterns read normalised (lower-case) text.
var (
	monthPat   = `(jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?`
	weekdayPat = `(?:(?:mon|tues?|wed(?:nes)?|thu(?:rs?)?|fri|sat(?:ur)?|sun)(?:day)?\.?,?\s+)?`
	// "monday, 12 january 2026", "12th of jan", "12 january".
	dmyRe = regexp.MustCompile(`\b` + weekdayPat + `(?:the\s+)?(\d{1,2})(?:st|nd|rd|th)?\s+(?:of\s+)?` + monthPat + `(?:,?\s+(\d{4}))?\b`)
	// "monday, january 12th, 2026", "jan 12".
	mdyRe = regexp.MustCompile(`\b` + weekdayPat + monthPat + `\s+(?:the\s+)?(\d{1,2})(?:st|nd|rd|th)?\b(?:,?\s+(\d{4})\b)?`)
	isoRe = regexp.MustCompile(`\b(\d{4})-(\d{1,2})-(\d{1,2})\b`)
	// "12/01/2026": read only when unambiguous (a part above 12, or both
	// the same).
	slashRe   = regexp.MustCompile(`\b(\d{1,2})/(\d{1,2})(?:/(\d{4}|\d{2}))?\b`)
	weekdayRe = regexp.MustCompile(`\b(until|till|til|back|return|returning|through|thru)\s+(?:in\s+(?:the\s+)?office\s+|to\s+(?:the\s+)?office\s+)?(?:on\s+)?(monday|tuesday|wednesday|thursday|friday|saturday|sunday|tomorrow)\b`)
	triggerRe = regexp.MustCompile(`\b(until|till|til|back|return|returning|returns|through|thru|resume|resuming|reachable|from|starting)\b`)
	months    = map[string]time.Month{"jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6, "jul": 7, "aug": 8, "sep": 9, "oct": 10, "nov": 11, "dec": 12}
	weekdays  = map[string]time.Weekday{"sunday": 0, "monday": 1, "tuesday": 2, "wednesday": 3, "thursday": 4, "friday": 5, "saturday": 6}
)

// dateCandidate is a date found in the text, where it starts and ends.
type dateCandidate struct {
	date       time.Time
	start, end int
}

// returnDate is the return date text states, at midnight in now's
// location, or zero. The first date after "until", "back", "return", …
// wins ("through"/"thru" give the day after); without such a word, the
// latest date. A date without a year is the next one (within 60 days
// back, this year's); dates before today or more than 400 days ahead are
// ignored.
func returnDate(text string, now time.Time) time.Time {
	text = clipBytes(text, 4<<10)
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, now.Location())
	var cands []dateCandidate
	add := func(y, m, d int, hasYear bool, start, end int) {
		if m < 1 || m > 12 || d < 1 || d > 31 {
			return
		}
		if !hasYear {
			y = today.Year()
			if time.Date(y, time.Month(m), d, 0, 0, 0, 0, now.Location()).Before(today.AddDate(0, 0, -60)) {
				y++
			}
		} else if y < 100 {
			y += 2000
		}
		t := time.Date(y, time.Month(m), d, 0, 0, 0, 0, now.Location())
		if t.Day() != d { // 31 April
			return
		}
		cands = append(cands, dateCandidate{t, start, end})
	}
	for _, m := range dmyRe.FindAllStringSubmatchIndex(text, 20) {
		d, _ := strconv.Atoi(text[m[2]:m[3]])
		y, hasYear := yearOf(text, m[6], m[7])
		add(y, int(months[text[m[4]:m[4]+3]]), d, hasYear, m[0], m[1])
	}
	for _, m := range mdyRe.FindAllStringSubmatchIndex(text, 20) {
		d, _ := strconv.Atoi(text[m[4]:m[5]])
		y, hasYear := yearOf(text, m[6], m[7])
		add(y, int(months[text[m[2]:m[2]+3]]), d, hasYear, m[0], m[1])
	}
	for _, m := range isoRe.FindAllStringSubmatchIndex(text, 20) {
		y, _ := strconv.Atoi(text[m[2]:m[3]])
		mo, _ := strconv.Atoi(text[m[4]:m[5]])
		d, _ := strconv.Atoi(text[m[6]:m[7]])
		add(y, mo, d, true, m[0], m[1])
	}
	for _, m := range slashRe.FindAllStringSubmatchIndex(text, 20) {
		a, _ := strconv.Atoi(text[m[2]:m[3]])
		b, _ := strconv.Atoi(text[m[4]:m[5]])
		y, hasYear := yearOf(text, m[6], m[7])
		switch {
		case a > 12 && b <= 12:
			add(y, b, a, hasYear, m[0], m[1]) // day/month
		case b > 12 && a <= 12:
			add(y, a, b, hasYear, m[0], m[1]) // month/day
		case a == b:
			add(y, a, b, hasYear, m[0], m[1])
		} // else ambiguous: skipped
	}
	for _, m := range weekdayRe.FindAllStringSubmatchIndex(text, 20) {
		day := text[m[4]:m[5]]
		covered := false
		for _, c := range cands {
			covered = covered || (c.start >= m[4] && c.start <= m[5]+2)
		}
		if covered {
			continue // "back on monday 12 january": the full date is read
		}
		var t time.Time
		if day == "tomorrow" {
			t = today.AddDate(0, 0, 1)
		} else {
			ahead := (int(weekdays[day]) - int(today.Weekday()) + 7) % 7
			if ahead == 0 {
				ahead = 7
			}
			t = today.AddDate(0, 0, ahead)
		}
		cands = append(cands, dateCandidate{t, m[4], m[5]})
	}
	var best time.Time
	bestPos := -1
	for _, c := range cands {
		lo := max(0, c.start-50)
		trig := triggerRe.FindAllString(text[lo:c.start], -1)
		if len(trig) == 0 {
			continue
		}
		word := trig[len(trig)-1]
		if word == "from" || word == "starting" {
			continue
		}
		if word == "through" || word == "thru" {
			c.date = c.date.AddDate(0, 0, 1)
		}
		if inRange(c.date, today) && (bestPos < 0 || c.start < bestPos) {
			best, bestPos = c.date, c.start
		}
	}
	if bestPos >= 0 {
		return best
	}
	for _, c := range cands {
		if inRange(c.date, today) && c.date.After(best) {
			best = c.date
		}
	}
	return best
}

func inRange(t, today time.Time) bool {
	return !t.Before(today) && !t.After(today.AddDate(0, 0, 400))
}

// yearOf reads an optional year group.
func yearOf(text string, i, j int) (int, bool) {
	if i < 0 {
		return 0, false
	}
	y, err := strconv.Atoi(text[i:j])
	return y, err == nil
}

// reportType is the report-type of a multipart/report Content-Type, or "".
func reportType(contentType string) string {
	mt, params := mediaTypeOf(contentType)
	if mt != "multipart/report" {
		return ""
	}
	return strings.ToLower(params["report-type"])
}
