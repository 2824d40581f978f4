# platform: linux/arm64
# base-platform: vendor/agent:2=linux/amd64
FROM alpine:3.19 AS tools
RUN apk add --no-cache curl

FROM vendor/agent:2
COPY --from=tools /usr/bin/curl /usr/bin/curl
# expect-warning: InvalidBaseImagePlatform
