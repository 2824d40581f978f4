# syntax=docker/dockerfile:1
# platform: linux/arm/v7
FROM --platform=$BUILDPLATFORM golang:1.21-bookworm AS build
ARG TARGETOS TARGETARCH TARGETVARIANT
ENV GOOS=$TARGETOS GOARCH=$TARGETARCH
RUN echo "building for ${TARGETOS}/${TARGETARCH}/${TARGETVARIANT}"
WORKDIR /go/src/app
COPY . .
RUN case "$TARGETVARIANT" in \
      v5) export GOARM=5 ;; \
      v6) export GOARM=6 ;; \
      v7) export GOARM=7 ;; \
    esac; \
    go build -o /usr/local/bin/app .

FROM debian:bookworm-slim
COPY --from=build /usr/local/bin/app /usr/local/bin/app
CMD ["app"]
