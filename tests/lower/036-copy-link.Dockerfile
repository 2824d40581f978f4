FROM busybox:local
COPY --link a /a
RUN true
