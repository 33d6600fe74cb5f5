# backhaul-dns container: the same release build the README documents (cargo build --release).
#
#   docker build -t backhaul-dns .
#   docker run -d --name backhaul-dns --network host \
#     -v /etc/backhaul-dns:/etc/backhaul-dns:ro -v backhaul-dns-state:/var/lib/backhaul-dns \
#     backhaul-dns
#
# --network host: the ZeroTier interface lives in the host's network namespace, and the
# server must bind the host's ZeroTier addresses. The HEALTHCHECK asks /healthz, so the
# config needs [http] listen (e.g. "127.0.0.1:9153").

FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
COPY src src
RUN cargo build --release --locked

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libcap2-bin \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/backhaul-dns /usr/local/bin/backhaul-dns
# Port 53 without root: the binary carries CAP_NET_BIND_SERVICE and nothing else.
RUN setcap cap_net_bind_service=+ep /usr/local/bin/backhaul-dns \
 && useradd --system --uid 10053 --home-dir /var/lib/backhaul-dns backhaul-dns \
 && mkdir -p /etc/backhaul-dns /var/lib/backhaul-dns \
 && chown backhaul-dns /var/lib/backhaul-dns
USER backhaul-dns
VOLUME ["/etc/backhaul-dns", "/var/lib/backhaul-dns"]
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s \
  CMD ["/usr/local/bin/backhaul-dns", "health", "--config", "/etc/backhaul-dns/backhaul-dns.toml"]
ENTRYPOINT ["/usr/local/bin/backhaul-dns"]
CMD ["run", "--config", "/etc/backhaul-dns/backhaul-dns.toml"]
