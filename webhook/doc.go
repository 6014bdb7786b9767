// Package webhook is dubboreach's mutating admission webhook. For pods created in namespaces
// labelled dubboreach.io/inject=enabled it injects DUBBO_IP_TO_REGISTRY (and, for host
// addresses, DUBBO_PORT_TO_REGISTRY) through the downward API, choosing between the pod IP and
// the host IP by asking the routes core which of them the network outside the cluster reaches.
//
// The package has three layers, each testable on its own:
//
//   - Injector.Mutate: pod (+ its namespace) -> decision, JSON patch, warnings. Pure, no I/O.
//   - Handler: an http.Handler speaking admission.k8s.io/v1 AdmissionReview, with metrics.
//   - SetupWithManager: registers the Handler on a controller-runtime webhook server.
//
// The node-label controller that keeps dubboreach.io/pod-route on Nodes is in webhook/nodelabel.
package webhook
