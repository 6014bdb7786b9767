// Package deploy tests what installs dubboreach in a cluster: the Helm chart (charts/dubboreach)
// and the kustomize manifests (config/). Both are rendered with the real tools (./bin/helm, the
// kustomize Go API), decoded into their Go types and checked, and sent with server-side dry-run
// to a real kube-apiserver (envtest) that has the cert-manager and prometheus-operator CRDs.
package deploy
