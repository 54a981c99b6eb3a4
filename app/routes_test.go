package app

import (
	"maps"
	"slices"
	"testing"
)

// TestRouteTable holds the router (Server.Handler, every route in one
// function) and hostileRoutes, the hostile-input suite's table, to each
// other in the quick tests too: every route chi knows has an entry and
// every entry is a route; a route registered for every method (its handler
// tells the methods apart) says in its entry which it serves; every CSV
// export has its route.
func TestRouteTable(t *testing.T) {
	f := newFixture(t, nil) // development: the crash route is there too
	routes := hostileRouter(t, f.srv.Config.Handler)
	for _, p := range slices.Sorted(maps.Keys(routes)) {
		rt, ok := hostileRoutes[p]
		if !ok {
			t.Errorf("route %s (%v) is not in hostileRoutes", p, routes[p])
			continue
		}
		if servesEveryMethod(routes[p]) && rt.methods == nil {
			t.Errorf("route %s is registered for every method: its hostileRoutes entry must name the methods it serves", p)
		}
	}
	for _, p := range slices.Sorted(maps.Keys(hostileRoutes)) {
		if _, ok := routes[p]; !ok {
			t.Errorf("hostileRoutes has %s, which the router does not serve", p)
		}
	}
	t.Logf("%d route patterns", len(routes))
	if n := len(routes); n != len(hostileRoutes) {
		t.Errorf("the router serves %d patterns, hostileRoutes has %d", n, len(hostileRoutes))
	}
	for _, e := range csvExports {
		if _, ok := routes["/admin/export/"+e.name+".csv"]; !ok {
			t.Errorf("CSV export %s has no route", e.name)
		}
	}
}
