ARG BASE=alpine:3.20
FROM --platform=$BUILDPLATFORM golang:1.22 AS build
ARG TARGETPLATFORM BUILDPLATFORM TARGETOS TARGETARCH
RUN echo "building on $BUILDPLATFORM for $TARGETPLATFORM"
FROM --platform=linux/amd64 ${BASE} AS amd64-runtime
FROM $BASE
COPY --from=build /go/bin/app /app
