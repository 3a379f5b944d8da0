# Multi-stage build: compile the release binary, then run it on a slim Debian.
FROM rust:1-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends clang libclang-dev make pkg-config libssl-dev \
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
# Public listener (OCSP, CRL): published. The admin listener (ingest, metrics) binds to the
# container's loopback by default and is not reachable from outside; vigie refuses to start with
# a non-loopback admin address over plain HTTP. To expose it, give it TLS and an allowlist of
# client certificates, e.g.:
#   docker run -p 8080:8080 -p 8081:8081 \
#     -e VIGIE_ADMIN_LISTEN=0.0.0.0:8081 \
#     -e VIGIE_ADMIN_TLS_CERT=/etc/vigie/admin/tls.pem -e VIGIE_ADMIN_TLS_KEY=/etc/vigie/admin/tls.key \
#     -e VIGIE_ADMIN_CLIENT_CA=/etc/vigie/admin/clients-ca.pem \
#     -e 'VIGIE_ADMIN_CLIENT_ALLOW=["subject:CN=CA operator,O=ASIP-SANTE,C=FR"]' \
#     -v /srv/vigie/admin:/etc/vigie/admin:ro …
# (keys mode 0600 and owned by the vigie user; or, where secrets can only be mounted 0644,
# -e VIGIE_SECURITY_ALLOW_LOOSE_KEY_PERMISSIONS=true). Behind a TLS-terminating proxy on the
# same host network, VIGIE_ADMIN_ALLOW_PLAINTEXT=true instead.
EXPOSE 8080
# Mount the CA material at /etc/vigie/pki; the store lives in the writable home.
ENV VIGIE_PUBLIC_LISTEN=0.0.0.0:8080 VIGIE_ADMIN_LISTEN=127.0.0.1:8081 VIGIE_STORE_PATH=/var/lib/vigie/data
STOPSIGNAL SIGTERM
# The public listener's /healthz: answers whatever TLS the admin listener has.
HEALTHCHECK --interval=30s --timeout=3s CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1
ENTRYPOINT ["vigie"]
CMD ["serve", "--config", "/etc/vigie/vigie.toml"]
