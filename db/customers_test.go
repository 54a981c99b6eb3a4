package db

import (
	"context"
	"crypto/rand"
	"errors"
	"testing"
)

func TestConvertLeadOutcomes(t *testing.T) {
	ctx := context.Background()
	d := mustOpen(t)
	f := seed(t, d)
	tasks := []NewTask{{Kind: "brief", Description: "Brief", Currency: "usd", RewardCents: 15000}}

	responded, err := d.RespondedLeads(ctx, 10)
	if err != nil || len(responded) != 5 || responded[0].ID != f.leads[18].ID {
		t.Fatalf("RespondedLeads = %d leads, first %v, %v", len(responded), responded, err)
	}

	conv, err := d.ConvertLead(ctx, f.leads[18].ID, "starter", tasks, fixedNow, rand.Reader)
	if err != nil || conv.Outcome != ConversionCreated || len(conv.Tasks) != 1 || conv.Tasks[0].Status != TaskPending {
		t.Fatalf("convert lead 19: %+v, %v", conv, err)
	}
	if c, err := d.CustomerByPortalToken(ctx, conv.PortalToken); err != nil || c.ID != conv.Customer.ID || *c.LeadID != f.leads[18].ID {
		t.Errorf("portal token resolves to %+v, %v", c, err)
	}
	if again, err := d.ConvertLead(ctx, f.leads[18].ID, "starter", tasks, fixedNow, rand.Reader); err != nil || again.Outcome != ConversionSkipped {
		t.Errorf("converting twice: %+v, %v", again, err)
	}
	if fresh, err := d.ConvertLead(ctx, f.leads[0].ID, "starter", tasks, fixedNow, rand.Reader); err != nil || fresh.Outcome != ConversionSkipped {
		t.Errorf("converting a new lead: %+v, %v", fresh, err)
	}

	mustExec(t, d.Bun(), "UPDATE leads SET email = ? WHERE id = ?", f.customers[7].ContactEmail, f.leads[19].ID)
	conv, err = d.ConvertLead(ctx, f.leads[19].ID, "starter", tasks, fixedNow, rand.Reader)
	if err != nil || conv.Outcome != ConversionAlreadyCustomer || conv.Customer.ID != f.customers[7].ID || conv.PortalToken != "" {
		t.Errorf("lead with a customer's e-mail: %+v, %v", conv, err)
	}
	if n := countRows(t, d, "SELECT COUNT(*) FROM leads WHERE id = ? AND status = 'converted' AND converted_at IS NOT NULL", f.leads[19].ID); n != 1 {
		t.Error("the already-customer lead is not converted")
	}

	if _, err := d.ConvertLead(ctx, 99999, "starter", tasks, fixedNow, rand.Reader); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing lead: %v", err)
	}
	requireAllInvariants(t, d, fixedNow)
}
