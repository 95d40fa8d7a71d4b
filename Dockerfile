# syntax=docker/dockerfile:1
#
# smpp-connector container image.
#
#   docker build -t smpp-connector .
#   docker run --rm -p 8080:8080 -p 8081:8081 -e MNO_ID=... -e NATS_URL=... smpp-connector
#
# Stage 1 builds the release binary with BuildKit cache mounts for the cargo registry and
# the target directory (the binary is copied out of the cache mount, which does not persist
# into the image). Stage 2 is a slim Debian with CA certificates and the binary only, run
# as an unprivileged user. Configuration is by environment variables (see README).

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm

FROM rust:${RUST_VERSION}-slim-${DEBIAN_RELEASE} AS builder
WORKDIR /src
COPY . .
RUN --mount=type=cache,id=smpp-cargo-registry,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,id=smpp-cargo-git,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,id=smpp-target,target=/src/target,sharing=locked \
    cargo build --locked --release -p smpp-connector-actors --bin smpp-connector \
    && install -D -m 0755 target/release/smpp-connector /out/smpp-connector

FROM debian:${DEBIAN_RELEASE}-slim AS runtime
ARG DEBIAN_RELEASE
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="smpp-connector" \
      org.opencontainers.image.description="SMPP 3.4 client service: NATS JetStream dispatch to MNO binds, delivery receipts and MO back to NATS" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.base.name="docker.io/library/debian:${DEBIAN_RELEASE}-slim"
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
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/smpp-connector"]
