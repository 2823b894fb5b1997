# syntax=docker/dockerfile:1
# The relay's image: a static binary on distroless (no shell, no package manager), running as nonroot
# (uid 65532), with the shipped config.yaml, which takes its deployment values from the environment.
#
#   docker build --build-arg VERSION=$(git describe --tags --always) -t ghcr.io/relaykit/twilio-relay:dev .
#   docker run --rm -e TWILIO_AUTH_TOKENS=... -e RELAY_PUBLIC_URL=... -e KAFKA_BROKERS=... \
#     -p 8080:8080 -p 9090:9090 ghcr.io/relaykit/twilio-relay:dev
#
# scripts/test-chart.sh builds the binary with the same go build command and checks the result.

FROM golang:1.26 AS build
WORKDIR /src
# Modules first: this layer is reused until go.mod or go.sum change.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY cmd/ cmd/
COPY relay/ relay/
ARG VERSION=dev
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/relay ./cmd/relay

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/relay /relay
COPY config.yaml /etc/relay/config.yaml
ENV RELAY_CONFIG=/etc/relay/config.yaml
# 8080: the webhook listener (Twilio). 9090: the admin listener (/healthz, /readyz, /metrics).
EXPOSE 8080 9090
USER nonroot
ENTRYPOINT ["/relay"]
CMD ["serve"]
