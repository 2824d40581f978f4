FROM busybox
RUNN a
COPY --chmodd=1 a b
ENV
HEALTHCHECK
