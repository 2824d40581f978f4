FROM busybox:local
SHELL ["/bin/sh", "-e", "-c"]
RUN set -x; for i in 1 2 3; do echo "step $i"; done > /steps
STOPSIGNAL SIGUSR2
EXPOSE 7000-7002/tcp 9000/udp
ENTRYPOINT ["sh", "-c", "trap 'exit 0' USR2; while :; do sleep 1; done"]
