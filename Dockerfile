# Multi-stage build: compile the release binary, then run it on a slim Debian.
FROM rust:1-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends clang libclang-dev pkg-config libssl-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin vigie && cp target/release/vigie /usr/local/bin/vigie

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends libssl3 ca-certificates openssl curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home /var/lib/vigie --create-home vigie
COPY --from=build /usr/local/bin/vigie /usr/local/bin/vigie
COPY config/vigie.toml /etc/vigie/vigie.toml
USER vigie
WORKDIR /var/lib/vigie
# Public (OCSP, CRL) and admin (ingest, metrics, health) listeners.
EXPOSE 8080 8081
# Mount the CA material at /etc/vigie/pki; the store lives in the writable home.
ENV VIGIE_PUBLIC_LISTEN=0.0.0.0:8080 VIGIE_ADMIN_LISTEN=0.0.0.0:8081 VIGIE_STORE_PATH=/var/lib/vigie/data
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=3s CMD curl -fsS http://127.0.0.1:8081/healthz || exit 1
ENTRYPOINT ["vigie"]
CMD ["serve", "--config", "/etc/vigie/vigie.toml"]
