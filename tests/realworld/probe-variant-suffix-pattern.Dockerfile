# platform: linux/arm/v6
FROM --platform=$BUILDPLATFORM alpine:3.19 AS fetch
ARG TARGETOS TARGETARCH TARGETVARIANT
ARG VERSION=1.2.3
RUN wget -O /tool "https://example.com/tool/${VERSION}/${TARGETOS}-${TARGETARCH}${TARGETVARIANT:+-$TARGETVARIANT}"
ENV SUFFIX=${TARGETARCH}${TARGETVARIANT:+/${TARGETVARIANT}}

FROM alpine:3.19
COPY --from=fetch --chmod=0755 /tool /usr/local/bin/tool
