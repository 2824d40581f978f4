FROM busybox:local
LABEL a=b "c d"="e f"
VOLUME /data ["/x"]
VOLUME /y /z
STOPSIGNAL SIGTERM
