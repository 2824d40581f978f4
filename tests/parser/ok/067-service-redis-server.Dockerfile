FROM redis:7
MAINTAINER Jane Doe <jane@example.com>
LABEL version="1.2" description="redis-server image" maintainer="ops@example.com"
ENV DEBIAN_FRONTEND noninteractive
RUN set -x \
    && echo "installing redis-server" \
    # comments inside continuations are skipped
    && true
ADD --chown=0:0 https://example.com/redis-server.conf /etc/redis-server.conf
VOLUME ["/var/lib/redis-server", "/var/log/redis-server"]
EXPOSE 6379/tcp
STOPSIGNAL SIGQUIT
USER root
ENTRYPOINT ["/docker-entrypoint.sh"]
CMD ["redis-server"]
