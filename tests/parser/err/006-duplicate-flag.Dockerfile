FROM busybox AS a
FROM busybox
COPY --from=a --from=a x /y
