package app

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hossagent/hossagent/agents"
	"github.com/hossagent/hossagent/db"
)

// sharedAgents is the web layer's view of an agent control shared by
// several instances (agents/cluster.Service implements it for real; its
// own tests run it on PostgreSQL): states and who owns them.
type sharedAgents struct {
	self, owner string
}

func (a sharedAgents) Ready(context.Context) error { return nil }
func (a sharedAgents) States() []agents.AgentState {
	return []agents.AgentState{{Name: agents.BizDev, State: agents.StateIdle}}
}
func (a sharedAgents) Ask(context.Context, string, string, time.Duration) (agents.RunResult, error) {
	return agents.RunResult{}, nil
}
func (a sharedAgents) Restart(context.Context, string) error     { return nil }
func (a sharedAgents) Stop(context.Context, string) error        { return nil }
func (a sharedAgents) Start(context.Context, string) error       { return nil }
func (a sharedAgents) InjectPanic(context.Context, string) error { return nil }
func (a sharedAgents) Instance() string                          { return a.self }
func (a sharedAgents) Owner() string                             { return a.owner }

func TestReadinessAndCardsNameTheAgentsOwner(t *testing.T) {
	for _, c := range []struct {
		agents     sharedAgents
		ready      string
		owner      string // the card's owner text
		notOnCards string
	}{
		{sharedAgents{"web-1", "web-1"}, "ready: owner\n", "web-1 (this instance)", ""},
		{sharedAgents{"web-2", "web-1"}, "ready: standby, owner web-1\n", "web-1", "this instance"},
		{sharedAgents{"web-2", ""}, "ready: standby, owner none (a takeover is under way)\n", "no instance (a takeover is under way)", ""},
	} {
		f := newFixture(t, nil, func(d *Deps) { d.Agents = c.agents })
		resp, _, body := f.get(t, "/readyz")
		if resp.StatusCode != http.StatusOK || body != c.ready {
			t.Errorf("%+v: readyz = %d %q, want 200 %q", c.agents, resp.StatusCode, body, c.ready)
		}
		f.signInAs(t, db.RoleAdmin)
		_, doc, _ := f.get(t, "/admin")
		for _, a := range agents.Registry {
			got := strings.Join(strings.Fields(doc.Find("#agent-"+a.Name+"-owner").Text()), " ")
			if got != c.owner {
				t.Errorf("%+v: %s's card names owner %q, want %q", c.agents, a.Name, got, c.owner)
			}
		}
		if c.notOnCards != "" && strings.Contains(doc.Find("#admin-agents").Text(), c.notOnCards) {
			t.Errorf("%+v: the cards say %q", c.agents, c.notOnCards)
		}
	}
}

func TestSingleProcessCardsNameNoOwner(t *testing.T) {
	f := newFixture(t, nil)
	f.signInAs(t, db.RoleAdmin)
	_, doc, _ := f.get(t, "/admin")
	if n := doc.Find("[id$='-owner']").Length(); n != 0 {
		t.Errorf("SQLite's control room names an owner on %d cards", n)
	}
}

// peerRecorder stands for cluster.Outbox in Deps.Events: what the web
// layer publishes, and what it sends to the other instances only.
type peerRecorder struct {
	mu          sync.Mutex
	local, peer []string
}

func (p *peerRecorder) Publish(e agents.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.local = append(p.local, e.Kind)
}

func (p *peerRecorder) PublishToPeers(e agents.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.peer = append(p.peer, e.Kind)
}

func TestEditsAreToldToThePeers(t *testing.T) {
	rec := &peerRecorder{}
	f := newFixture(t, nil, func(d *Deps) { d.Events = rec })
	f.server.refreshLive()
	f.server.catalogueChanged(context.Background())
	rec.mu.Lock()
	defer rec.mu.Unlock()
	want := []string{agents.EventControlChanged, agents.EventCatalogueEdited, agents.EventControlChanged}
	if !slices.Equal(rec.peer, want) || len(rec.local) != 0 {
		t.Errorf("peers told %v, bus told %v; want %v and nothing", rec.peer, rec.local, want)
	}
}
