# syntax=docker/dockerfile:1
ARG BUILDER_IMAGE=golang:1.22
ARG RUNTIME_IMAGE=gcr.io/distroless/static:nonroot
ARG BUILD_MODE=release

FROM ${BUILDER_IMAGE} AS builder-release
RUN go build -o /app .

FROM ${BUILDER_IMAGE} AS builder-debug
RUN go build -gcflags=all="-N -l" -o /app .

FROM builder-${BUILD_MODE} AS builder

FROM ${RUNTIME_IMAGE}
COPY --from=builder /app /app
ENTRYPOINT ["/app"]
