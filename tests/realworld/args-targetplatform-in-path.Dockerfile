# syntax=docker/dockerfile:1
FROM --platform=$BUILDPLATFORM alpine:3.19 AS fetch
ARG TARGETPLATFORM
ARG BUILDPLATFORM
RUN echo "I am running on $BUILDPLATFORM, building for $TARGETPLATFORM" > /log
ARG TARGETOS TARGETARCH
COPY bin/${TARGETOS}_${TARGETARCH}/tool /tool

FROM alpine:3.19
COPY --from=fetch /tool /usr/local/bin/tool
COPY --from=fetch /log /log
