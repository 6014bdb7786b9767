//go:build tools

// Package tools pins helm, built into ./bin by hack/install-tools.sh for the chart tests.
package tools

import _ "helm.sh/helm/v3/cmd/helm"
