# syntax=docker/dockerfile:1
FROM rust:1.77-bookworm AS build
ENV RUSTC_WRAPPER=sccache SCCACHE_DIR=/sccache
RUN cargo install sccache --locked
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/sccache \
    --mount=type=secret,id=aws,target=/root/.aws/credentials \
    --mount=type=cache,target=/usr/local/cargo/registry \
    cargo build --release --locked && sccache --show-stats

FROM gcr.io/distroless/cc-debian12
COPY --from=build /src/target/release/daemon /daemon
ENTRYPOINT ["/daemon"]
