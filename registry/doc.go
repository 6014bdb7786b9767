// Package registry is the registry auditor: it scans ZooKeeper (registry/zk), parses every
// Dubbo registration (registry/dubbo), asks the routes core for a verdict on its address, maps
// it back to the pod and node behind it, explains what to do, and publishes the result: a
// Result held for the CLI and the dashboard, Prometheus metrics, and Kubernetes Events.
//
// The pipeline is: zk.Snapshot -> Judge (verdicts, pods, explanations) -> Result -> Holder ->
// (CLI output | HTTP API | metrics | Events).
package registry
