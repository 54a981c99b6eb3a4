package agents

// ReloadAutopilot makes the running coordinator read its persisted switch
// and interval again, as SetAutopilot does after storing them. With several
// instances (agents/cluster) another instance stores them and tells the
// owner's coordinator through this.
func (c *Coordinator) ReloadAutopilot() {
	select {
	case c.wake <- struct{}{}:
	default: // a reload is already pending: it reads the latest settings
	}
}
