FROM busybox
COPY --chmodd=755 a /b
