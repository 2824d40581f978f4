FROM postgres:16
MAINTAINER Jane Doe <jane@example.com>
LABEL version="1.3" description="postgres image" maintainer="ops@example.com"
ENV DEBIAN_FRONTEND noninteractive
RUN set -x \
    && echo "installing postgres" \
    # comments inside continuations are skipped
    && true
ADD --chown=0:0 https://example.com/postgres.conf /etc/postgres.conf
VOLUME ["/var/lib/postgres", "/var/log/postgres"]
EXPOSE 5432/tcp
STOPSIGNAL SIGQUIT
USER root
ENTRYPOINT ["/docker-entrypoint.sh"]
CMD ["postgres"]
