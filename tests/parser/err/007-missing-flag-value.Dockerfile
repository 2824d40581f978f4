FROM busybox
COPY --from x /y
