FROM rust:1-slim AS chef
WORKDIR /app
RUN cargo install cargo-chef --locked

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
COPY --from=planner /app/recipe.json recipe.json
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    cargo chef cook --release --recipe-path recipe.json
COPY . .
RUN cargo build --release --bin app && \
    strip target/release/app

FROM debian:bookworm-slim AS runtime
LABEL org.opencontainers.image.source="https://example.com/app" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=builder /app/target/release/app /usr/local/bin/app
ENTRYPOINT ["/usr/local/bin/app"]
CMD ["--help"]
