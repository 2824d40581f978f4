FROM busybox:local
ARG P=8080
EXPOSE $P ${P}/udp
