FROM busybox:local
ENTRYPOINT ["/bin/echo"]
