# syntax=docker/dockerfile:1
# One static binary on distroless: no shell, no package manager, runs as nonroot (65532).
# Build for several platforms with: docker buildx build --platform linux/amd64,linux/arm64 .
FROM --platform=$BUILDPLATFORM golang:1.26 AS build
ARG TARGETOS=linux
ARG TARGETARCH=amd64
ARG VERSION=dev
ARG COMMIT=unknown
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# THE build command, shared with `make build` and test/image (which checks its output is static).
# (ARG values are in the environment of RUN, so VERSION and COMMIT reach the script.)
RUN hack/build-binary.sh /out/dubboreach $TARGETOS $TARGETARCH

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/dubboreach /dubboreach
USER 65532:65532
ENTRYPOINT ["/dubboreach"]
