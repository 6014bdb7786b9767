// Package image tests the container image without a Docker engine: the one build command the
// Dockerfile runs (hack/build-binary.sh) is run here for linux/amd64 and linux/arm64, its output
// is checked to be a static binary of the right machine that runs, and the Dockerfile is parsed
// to check that it uses that command and ships the binary alone on a distroless, non-root,
// shell-less base.
package image
