# syntax=docker/dockerfile:1
# The relay's image: a static binary on an empty base (no shell, no package manager), the CA bundle of the
# pinned build image for TLS to Kafka and the other sinks, the shipped config.yaml (which takes its
# deployment values from the environment), running as uid:gid 65532:65532.
#
#   docker buildx build --platform linux/amd64,linux/arm64 --build-arg VERSION=0.1.0 \
#     -t ghcr.io/relaykit/twilio-relay:0.1.0 .
#   docker run --rm -e TWILIO_AUTH_TOKENS=... -e RELAY_PUBLIC_URL=... -e KAFKA_BROKERS=... \
#     -p 8080:8080 -p 9090:9090 ghcr.io/relaykit/twilio-relay:0.1.0
#
# The build stage runs on the builder's platform and cross-compiles for the target (no emulation).
# .github/workflows/release.yml builds and pushes it on a tag v*. scripts/image.sh builds the same layout
# without Docker, and scripts/test-chart.sh checks that image and that this file say the same.

# Pinned by version; keep it at go.mod's go line (scripts/test-chart.sh checks).
FROM --platform=$BUILDPLATFORM golang:1.26.8-trixie AS build
WORKDIR /src
# Modules first: this layer is reused until go.mod or go.sum change.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY cmd/ cmd/
COPY relay/ relay/
ARG VERSION=dev
ARG TARGETOS TARGETARCH
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/relay ./cmd/relay
RUN install -d -m 1777 /out/tmp

FROM scratch
ARG VERSION=dev
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/tmp /tmp
COPY --from=build /out/relay /relay
COPY config.yaml /etc/relay/config.yaml
ENV RELAY_CONFIG=/etc/relay/config.yaml
# 8080: the webhook listener (Twilio). 9090: the admin listener (/healthz, /readyz, /metrics).
EXPOSE 8080 9090
# A uid, not a name: there is no /etc/passwd, and Kubernetes' runAsNonRoot can only check a number.
USER 65532:65532
LABEL org.opencontainers.image.title="twilio-relay" \
      org.opencontainers.image.description="Twilio Event Streams webhook sink to Kafka" \
      org.opencontainers.image.source="https://github.com/relaykit/twilio-relay" \
      org.opencontainers.image.version="${VERSION}"
ENTRYPOINT ["/relay"]
CMD ["serve"]
