# syntax=docker/dockerfile:1
FROM --platform=$BUILDPLATFORM rust:1.76-alpine AS build
ARG TARGETPLATFORM
RUN apk add --no-cache musl-dev
RUN case "$TARGETPLATFORM" in \
      "linux/amd64") echo x86_64-unknown-linux-musl > /rust_target ;; \
      "linux/arm64") echo aarch64-unknown-linux-musl > /rust_target ;; \
      *) exit 1 ;; \
    esac && rustup target add "$(cat /rust_target)"
WORKDIR /usr/src/app
COPY Cargo.toml Cargo.lock ./
COPY src ./src
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/src/app/target,id=target-${TARGETPLATFORM} \
    cargo build --release --target "$(cat /rust_target)" && \
    cp "target/$(cat /rust_target)/release/app" /app

FROM scratch
COPY --from=build /app /app
USER 1000
ENTRYPOINT ["/app"]
