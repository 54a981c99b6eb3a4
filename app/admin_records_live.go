package app

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/a-h/templ"
	"github.com/go-chi/chi/v5"
	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"

	"github.com/hossagent/hossagent/views"
)

// Record pages are live: each subscribes to a stream of its own
// (/events/admin/{kind}/{id}) that re-renders the page after every change
// and sends the regions that differ, so after an action (or a webhook, or an
// agent) the fields, the actions and the tables of the page agree.
//
// The regions are cut out of the whole page as rendered, by id, so the
// stream shows exactly what a reload would. The regions that carry an
// action's result (the invoice's result line, the portal link panel with
// its once-shown link, the plan, mail-flag and client-mail panels) are not
// among them: a live update must not wipe a result the operator has not
// read yet. The invoice's actions are: their state part
// (#invoice-actions-state), not the result above it.
var recordLiveRegions = map[string][]string{
	"lead":     {"record-fields", "record-customer", "record-messages", "record-replies", "record-timeline"},
	"customer": {"record-fields", "record-profit", "record-tasks", "record-invoices", "record-timeline"},
	"task":     {"record-fields", "record-invoice-line", "record-timeline"},
	"invoice":  {"record-fields", "invoice-actions-state", "record-lines", "record-stripe-events", "record-timeline"},
}

// recordLiveURL is the stream of a record page; the customer page's stream
// keeps the table pages the page shows (tp, ip).
func recordLiveURL(kind string, id int64, r *http.Request) string {
	u := "/events/admin/" + kind + "/" + strconv.FormatInt(id, 10)
	if kind == "customer" {
		u += "?" + recordQuery(r).Encode()
	}
	return u
}

// recordQuery is the part of a record page's query its render depends on,
// in one canonical form.
func recordQuery(r *http.Request) url.Values {
	return url.Values{"tp": {cursorParam(r, "tp").String()}, "ip": {cursorParam(r, "ip").String()}}
}

// recordEvents streams one record page's live regions.
func (s *Server) recordEvents(w http.ResponseWriter, r *http.Request) {
	kind := chi.URLParam(r, "kind")
	regions, known := recordLiveRegions[kind]
	id, ok := recordID(r)
	if !known || !ok {
		s.notFound(w, r)
		return
	}
	// The record must exist now; a render that fails later is retried.
	if _, err := s.recordPageComponent(r.Context(), r, kind, id); err != nil {
		s.fail(w, r, err)
		return
	}
	key := "record:" + kind + ":" + strconv.FormatInt(id, 10)
	if kind == "customer" {
		key += "?" + recordQuery(r).Encode()
	}
	// The render outlives nothing of this request but its URL, its query
	// and its user, which the key names or the regions do not show.
	req := r.Clone(context.WithoutCancel(r.Context()))
	s.serveStream(w, r, key, sessionReader(r, true), func(ctx context.Context) ([]fragment, error) {
		page, err := s.recordPageComponent(ctx, req.WithContext(ctx), kind, id)
		if err != nil {
			return nil, err
		}
		var buf bytes.Buffer
		if err := page.Render(ctx, &buf); err != nil {
			return nil, err
		}
		cut := cutRegions(buf.Bytes(), regions)
		frags := make([]fragment, 0, len(regions))
		for _, id := range regions {
			if h, ok := cut[id]; ok {
				frags = append(frags, fragment{id: id, c: rawHTML(h)})
			}
		}
		return frags, nil
	})
}

// recordPageComponent is the whole record page of kind and id, as its page
// handler renders it.
func (s *Server) recordPageComponent(ctx context.Context, r *http.Request, kind string, id int64) (templ.Component, error) {
	r = r.WithContext(ctx)
	switch kind {
	case "lead":
		p, err := s.leadPage(r, id)
		return views.LeadDetail(p), err
	case "customer":
		p, err := s.customerPage(r, id)
		return views.CustomerDetail(p), err
	case "task":
		p, err := s.taskPage(r, id)
		return views.TaskDetail(p), err
	default:
		p, err := s.invoicePage(r, id)
		return views.InvoiceDetail(p), err
	}
}

// rawHTML is already rendered (and escaped) markup as a component.
func rawHTML(s string) templ.Component {
	return templ.ComponentFunc(func(_ context.Context, w io.Writer) error {
		_, err := io.WriteString(w, s)
		return err
	})
}

// voidElements have no end tag.
var voidElements = map[atom.Atom]bool{
	atom.Area: true, atom.Base: true, atom.Br: true, atom.Col: true, atom.Embed: true, atom.Hr: true, atom.Img: true,
	atom.Input: true, atom.Link: true, atom.Meta: true, atom.Source: true, atom.Track: true, atom.Wbr: true,
}

// cutRegions returns the markup of each element of page whose id is one of
// ids, start tag to end tag. page is templ's output, so every element that
// is not void is closed.
func cutRegions(page []byte, ids []string) map[string]string {
	want := make(map[string]bool, len(ids))
	for _, id := range ids {
		want[id] = true
	}
	out := make(map[string]string, len(ids))
	z := html.NewTokenizer(bytes.NewReader(page))
	pos, start, depth := 0, 0, 0
	current := ""
	for {
		tt := z.Next()
		if tt == html.ErrorToken {
			return out
		}
		raw := len(z.Raw())
		switch tt {
		case html.StartTagToken:
			name, hasAttr := z.TagName()
			void := voidElements[atom.Lookup(name)]
			if current == "" && hasAttr {
				for {
					k, v, more := z.TagAttr()
					if string(k) == "id" && want[string(v)] && out[string(v)] == "" {
						current, start, depth = string(v), pos, 0
						break
					}
					if !more {
						break
					}
				}
			}
			if current != "" && !void {
				depth++
			}
			if current != "" && void && depth == 0 { // a void element is its own region
				out[current] = string(page[start : pos+raw])
				current = ""
			}
		case html.EndTagToken:
			if current != "" {
				if depth--; depth == 0 {
					out[current] = string(page[start : pos+raw])
					current = ""
				}
			}
		}
		pos += raw
	}
}
