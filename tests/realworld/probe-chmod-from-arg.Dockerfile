# syntax=docker/dockerfile:1
FROM alpine:3.19
ARG MODE=0750
ARG OWNER=0:0
COPY --chmod=${MODE} --chown=${OWNER} entrypoint.sh /entrypoint.sh
VOLUME /var/lib/app /var/log/app
USER root:root
ENTRYPOINT ["/entrypoint.sh"]
