# syntax=docker/dockerfile:1
#
# HossAgent: one static Go binary (CGO_ENABLED=0, pure-Go SQLite) on distroless.
#   docker build -t hossagent .
#   docker run -p 8080:8080 -v hossagent_data:/data hossagent
# Generated templ files and vendored htmx are committed, so the build needs no
# templ run, no Node and no network beyond the Go module proxy.

ARG GO_VERSION=1.26

# ---- build ----------------------------------------------------------------
FROM --platform=$BUILDPLATFORM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src

ENV CGO_ENABLED=0 GOFLAGS=-mod=readonly

# Dependencies first, so they are cached until go.mod/go.sum change.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download

COPY . .

# Set by BuildKit for the target platform (cross-compiles without emulation).
ARG TARGETOS TARGETARCH
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    GOOS=${TARGETOS:-linux} GOARCH=${TARGETARCH:-amd64} \
    go build -trimpath -ldflags="-s -w" -o /out/hossagent .

# The data directory, owned by the distroless "nonroot" user (65532), so that
# a fresh named volume mounted at /data starts out writable by the app.
RUN mkdir -p /out/data && chown 65532:65532 /out/data && chmod 0750 /out/data

# ---- run ------------------------------------------------------------------
# static-debian12 carries CA certificates (Stripe, SMTP, LLM over TLS), tzdata
# and /etc/passwd entries, and nothing else: no shell, no package manager.
FROM gcr.io/distroless/static-debian12:nonroot

COPY --from=build /out/hossagent /hossagent
COPY --from=build --chown=65532:65532 /out/data /data

ENV DATA_DIR=/data \
    ADDR=:8080

VOLUME /data
EXPOSE 8080

# Numeric, so that runtimes which check "non-root" without reading
# /etc/passwd (Kubernetes runAsNonRoot, Fly's volume mount owner) see it.
# At start the app proves /data writable by this user (a volume created
# elsewhere may belong to root) and otherwise exits with the exact
# "chown -R 65532:65532 /data" to run as root, since this image has no shell.
USER 65532:65532

# The app handles SIGTERM (graceful shutdown); the default stop signal is fine.
ENTRYPOINT ["/hossagent"]
CMD ["serve"]
