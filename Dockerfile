# syntax=docker/dockerfile:1
# xietong: build with the Rust toolchain, run on a small image as a non-root user.
#   docker build -t xietong .
#   docker run --rm -p 8080:8080 xietong            # the embedded store, in /var/lib/xietong
# The Helm chart (charts/xietong) runs it on Redis with its configuration in a ConfigMap.

FROM rust:1.95-bookworm AS build
WORKDIR /src
# Dependencies first, so a change to the code alone reuses their layer.
COPY Cargo.toml Cargo.lock ./
COPY benches/load/Cargo.toml benches/load/Cargo.toml
RUN mkdir -p src benches/load/src && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
    && for b in pipeline store routing threads stages; do echo 'fn main() {}' > benches/$b.rs; done \
    && echo 'fn main() {}' > benches/load/src/main.rs && touch benches/load/src/lib.rs \
    && cargo build --release --locked -p xietong && rm -rf src benches
COPY src src
COPY schemas schemas
COPY config config
COPY benches benches
RUN touch src/main.rs src/lib.rs && cargo build --release --locked -p xietong --bin xietong

# glibc and libgcc, no shell, no package manager; user 65532 (nonroot).
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/xietong /usr/local/bin/xietong
COPY --chown=65532:65532 config /etc/xietong
USER 65532:65532
WORKDIR /var/lib/xietong
ENV XIETONG_CONFIG=/etc/xietong
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/xietong"]
CMD ["serve", "--listen", "0.0.0.0:8080", "--data-dir", "/var/lib/xietong"]
