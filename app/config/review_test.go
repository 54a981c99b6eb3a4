package config

import (
	"strings"
	"testing"
)

// OUTREACH_REVIEW is off unless set, read as a boolean, and a value that is
// not one stops the start naming it.
func TestOutreachReviewSwitch(t *testing.T) {
	c, _, err := Load(env(nil))
	if err != nil || c.Email.Review {
		t.Fatalf("default: review %v, %v", c.Email.Review, err)
	}
	for _, v := range []string{"true", "TRUE", "1"} {
		c, _, err := Load(env(map[string]string{"OUTREACH_REVIEW": v}))
		if err != nil || !c.Email.Review {
			t.Errorf("OUTREACH_REVIEW=%s: review %v, %v", v, c.Email.Review, err)
		}
	}
	_, _, err = Load(env(map[string]string{"OUTREACH_REVIEW": "please"}))
	if err == nil || !strings.Contains(err.Error(), "OUTREACH_REVIEW") || !strings.Contains(err.Error(), "true or false") {
		t.Fatalf("OUTREACH_REVIEW=please: %v", err)
	}
}
