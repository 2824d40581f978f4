FROM busybox:local
ARG VERSION=1.0
LABEL version=$VERSION
