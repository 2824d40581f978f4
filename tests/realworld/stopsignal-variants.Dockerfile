FROM busybox:local AS numeric
STOPSIGNAL 9

FROM busybox:local AS named-short
STOPSIGNAL TERM

FROM busybox:local AS from-arg
ARG SIG=SIGUSR1
STOPSIGNAL $SIG
CMD ["sleep", "3600"]
