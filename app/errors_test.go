package app

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/hossagent/hossagent/agents"
	"github.com/hossagent/hossagent/db"
)

// TestErrorCodes pins what each error of the store and the agents means to
// a client: its category and, through codes, its status.
func TestErrorCodes(t *testing.T) {
	wrap := func(err error) error { return fmt.Errorf("context: %w", err) }
	for _, c := range []struct {
		err    error
		code   errorCode
		status int
	}{
		{nil, "", http.StatusInternalServerError},
		{errors.New("disk full"), codeInternal, http.StatusInternalServerError},
		{wrap(db.ErrNotFound), codeNotFound, http.StatusNotFound},
		{wrap(agents.ErrUnknownAgent), codeNotFound, http.StatusNotFound},
		{db.ErrBadCredentials, codeUnauthorized, http.StatusUnauthorized},
		{wrap(agents.ErrInvalidCSV), codeInvalid, http.StatusBadRequest},
		{&db.InvoiceStateError{Reason: db.ErrInvoiceNotOpen}, codeConflict, http.StatusConflict},
		{wrap(&db.InvoiceStateError{Reason: db.ErrInvoiceHasLink}), codeConflict, http.StatusConflict},
		{wrap(agents.ErrStopped), codeConflict, http.StatusConflict},
		{wrap(agents.ErrBackoff), codeConflict, http.StatusConflict},
		{wrap(agents.ErrBusy), codeBusy, http.StatusConflict},
		{wrap(agents.ErrNoAnswer), codeRunning, http.StatusAccepted},
		{wrap(agents.ErrNotRunning), codeUnavailable, http.StatusServiceUnavailable},
	} {
		if got := codeOf(c.err); got != c.code {
			t.Errorf("codeOf(%v) = %q, want %q", c.err, got, c.code)
		}
		if got := errorStatus(c.err); got != c.status {
			t.Errorf("errorStatus(%v) = %d, want %d", c.err, got, c.status)
		}
	}
	for code := range codes {
		if _, msg := errorAnswer(code); msg == "" {
			t.Errorf("category %q has no sentence", code)
		}
	}
}
