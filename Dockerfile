# syntax=docker/dockerfile:1
#
# smpp-connector container image.
#
# Build (BuildKit, from the repository root; .dockerignore keeps the context small):
#
#   docker build -t registry.example.com/sms-platform/smpp-connector:0.1.0 .
#   docker run --rm -p 8080:8080 -p 8081:8081 -e MNO_ID=... -e NATS_URL=... \
#     registry.example.com/sms-platform/smpp-connector:0.1.0
#
# Stage `builder` builds the release binary with BuildKit cache mounts for the cargo
# registry and the target directory (the binary is copied out of the cache mount, which
# does not persist into the image). Stage `runtime` is a slim Debian with CA certificates
# and the binary only, run as the unprivileged uid/gid 10001 (the Helm chart's
# runAsUser). Configuration is by environment variables (README "Configuration"); the
# chart (charts/smpp-connector) runs it with a read-only root filesystem and /tmp on an
# emptyDir.
#
# Base images are pinned by exact version: the Rust toolchain the workspace is developed
# and tested with (1.95.0) and a dated Debian bookworm snapshot, both bookworm so the glibc
# the binary links against is the runtime's. To update, change both tags (and, to pin by
# digest as well, append @sha256:... to each FROM); scripts/check-deploy rejects floating
# tags (latest, a bare major or minor version, an undated `bookworm-slim`).

FROM rust:1.95.0-slim-bookworm AS builder
WORKDIR /src
COPY . .
RUN --mount=type=cache,id=smpp-cargo-registry,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,id=smpp-cargo-git,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,id=smpp-target,target=/src/target,sharing=locked \
    cargo build --locked --release -p smpp-connector-actors --bin smpp-connector \
    && install -D -m 0755 target/release/smpp-connector /out/smpp-connector

FROM debian:bookworm-20260824-slim AS runtime
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="smpp-connector" \
      org.opencontainers.image.description="SMPP 3.4 client service: NATS JetStream dispatch to MNO binds, delivery receipts and MO back to NATS" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.base.name="docker.io/library/debian:bookworm-20260824-slim"
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 smpp \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin smpp
COPY --from=builder /out/smpp-connector /usr/local/bin/smpp-connector
USER 10001:10001
# 8080: /health, /ready, /metrics (HTTP_PORT); 8081: admin API (ADMIN_PORT).
EXPOSE 8080 8081
# SIGTERM drains every bind, unbinds and hands the bind ownership keys back (NATS KV).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/smpp-connector"]
CMD ["run"]
