package agents

// Events the web layer sends to the other instances sharing a PostgreSQL
// database (agents/cluster), and never publishes on its own bus: its own
// process has reloaded and re-rendered already.
const (
	// EventControlChanged: an admin changed what the control room shows
	// without an engine event (a setting, a cap, leads re-queued).
	EventControlChanged = "control_changed"
	// EventSequencesEdited: the stored follow-ups changed; every instance
	// reloads its copy (the owner's BizDev reads it).
	EventSequencesEdited = "sequences_edited"
	// EventCatalogueEdited: the stored catalogue changed; every instance
	// reloads its copy (the kind titles clients read).
	EventCatalogueEdited = "catalogue_edited"
)

// PeerPublisher sends an event to the other instances only
// (cluster.Outbox). A publisher without it (the Bus, on SQLite) has no
// other instances to tell.
type PeerPublisher interface {
	PublishToPeers(e Event)
}
