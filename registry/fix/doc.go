// Package fix corrects registrations the auditor found unreachable, safely and reversibly:
//
//   - disable: a consumer-side Dubbo 2.7 config-center rule (and optionally a legacy override URL)
//     that tells consumers to stop calling an unreachable provider address;
//   - prune: deletes stale persistent (dynamic=false) provider entries, after writing a backup
//     that Restore puts back byte for byte;
//   - evict: evicts pods through the Eviction API so their controller re-creates them and the
//     webhook injects a reachable address.
//
// Planning and acting are separate: the Plan* functions read the current state and return a
// JSON-serialisable Plan (what --dry-run prints); an Executor applies a Plan with compare-and-set
// writes, a cap on changes per cycle, and a Result for every change. Nothing is kept in memory
// that a restart would need: the entries dubboreach wrote carry a marker and are recomputed from
// ZooKeeper each cycle. Only the prune grace clock and the eviction rate limits live in memory,
// and losing them errs on the side of doing less.
package fix
