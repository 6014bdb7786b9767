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
# The same command as `make image-binary` (tested there without a Docker engine).
RUN CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH go build -trimpath \
      -ldflags "-s -w -X github.com/dubboreach/dubboreach/internal/version.Version=$VERSION -X github.com/dubboreach/dubboreach/internal/version.Commit=$COMMIT" \
      -o /out/dubboreach ./cmd/dubboreach

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/dubboreach /dubboreach
USER 65532:65532
ENTRYPOINT ["/dubboreach"]
