FROM busybox
COPY --checksum=sha256:abc a /b
