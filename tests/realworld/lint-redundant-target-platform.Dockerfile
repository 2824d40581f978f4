FROM --platform=$TARGETPLATFORM alpine:3.19 AS runtime
RUN uname -m
# expect-warning: RedundantTargetPlatform
