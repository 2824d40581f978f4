FROM busybox:local
HEALTHCHECK --interval=5s --timeout=2s --start-period=1s --retries=2 \
  CMD ["sh", "-c", "test -f /tmp/healthy"]
CMD ["sh", "-c", "touch /tmp/healthy && sleep 3600"]
