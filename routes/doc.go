// Package routes is the route-publishing core of dubboreach and its single source of truth.
//
// The data flows one way:
//
//	Inventory (Nodes, Calico IPAM blocks, flannel annotations)
//	  + Fabric (what the network outside the cluster reaches, which pod routes are published)
//	  -> Table (pod prefix -> node next hop, published or not, problems found on the way)
//	  -> Verdict for any address (reachable, unreachable or unknown, with a reason)
//
// A Table is immutable once built, so any number of goroutines may ask it for verdicts while
// a Store swaps in a new one as the cluster changes.
package routes
