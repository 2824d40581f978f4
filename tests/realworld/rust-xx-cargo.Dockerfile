# syntax=docker/dockerfile:1
FROM --platform=$BUILDPLATFORM tonistiigi/xx AS xx
FROM --platform=$BUILDPLATFORM rust:alpine AS builder
COPY --from=xx / /
RUN apk add clang lld
COPY . ./src
ARG TARGETPLATFORM
RUN xx-cargo build --release --target-dir ./build --manifest-path ./src/Cargo.toml && \
    xx-verify ./build/$(xx-cargo --print-target-triple)/release/hello_cargo

FROM scratch
COPY --from=builder /build/*/release/hello_cargo /
ENTRYPOINT ["/hello_cargo"]
