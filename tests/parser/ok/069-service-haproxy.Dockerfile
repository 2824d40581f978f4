FROM debian:bookworm-slim
MAINTAINER Jane Doe <jane@example.com>
LABEL version="1.4" description="haproxy image" maintainer="ops@example.com"
ENV DEBIAN_FRONTEND noninteractive
RUN set -x \
    && echo "installing haproxy" \
    # comments inside continuations are skipped
    && true
ADD --chown=0:0 https://example.com/haproxy.conf /etc/haproxy.conf
VOLUME ["/var/lib/haproxy", "/var/log/haproxy"]
EXPOSE 8443/tcp
STOPSIGNAL SIGQUIT
USER root
ENTRYPOINT ["/docker-entrypoint.sh"]
CMD ["haproxy"]
