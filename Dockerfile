# reachability_exporter: a static binary in an empty image.
#
#   docker build -t reachability_exporter .
#   docker run -p 9799:9799 reachability_exporter
#
# The runtime stage takes its binary from the stage named by BINARY_FROM:
# `builder` (the default: compile here) or `host` (a static binary built
# beforehand on the host, at target/x86_64-unknown-linux-gnu/release/, with
# RUSTFLAGS="-C target-feature=+crt-static"): CI builds the image that way,
# with no base image to pull.
ARG RUST_VERSION=1.95
ARG BINARY_FROM=builder

FROM docker.io/library/rust:${RUST_VERSION}-bookworm AS builder
WORKDIR /src
COPY . .
# glibc static-pie: DNS goes through hickory, so no NSS is needed at run time.
ENV RUSTFLAGS="-C target-feature=+crt-static"
RUN cargo build --release --locked --target x86_64-unknown-linux-gnu \
    && cp target/x86_64-unknown-linux-gnu/release/reachability_exporter /reachability_exporter

FROM scratch AS host
COPY target/x86_64-unknown-linux-gnu/release/reachability_exporter /reachability_exporter

# hadolint ignore=DL3006
FROM ${BINARY_FROM} AS binary

FROM scratch AS runtime
# Trust roots are compiled in (webpki-roots): the image needs no CA bundle.
COPY --from=binary /reachability_exporter /usr/local/bin/reachability_exporter
COPY config.yaml /etc/reachability_exporter/config.yaml
USER 65534:65534
EXPOSE 9799
ENTRYPOINT ["/usr/local/bin/reachability_exporter", "--config.file=/etc/reachability_exporter/config.yaml"]
