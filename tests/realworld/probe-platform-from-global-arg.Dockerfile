ARG BUILDER_PLATFORM=$BUILDPLATFORM
FROM --platform=${BUILDER_PLATFORM} golang:1.22 AS build
RUN go version
FROM alpine:3.19
COPY --from=build /usr/local/go/VERSION /
