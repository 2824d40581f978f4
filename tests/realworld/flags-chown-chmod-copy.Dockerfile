# syntax=docker/dockerfile:1
FROM alpine:3.19
RUN addgroup -S app && adduser -S -G app app
COPY --chown=app:app --chmod=644 config.yaml /etc/app/config.yaml
COPY --chown=1000:1000 --chmod=755 entrypoint.sh /usr/local/bin/
ADD --chown=app:app --chmod=640 secrets.tar.gz /etc/app/
COPY --chmod=u=rwx,go=rx scripts/ /opt/scripts/
USER app
ENTRYPOINT ["/usr/local/bin/entrypoint.sh"]
