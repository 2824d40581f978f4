FROM alpine:3.19
MAINTAINER Jane Doe <jane@example.com>
LABEL version="1.7" description="crond image" maintainer="ops@example.com"
ENV DEBIAN_FRONTEND noninteractive
RUN set -x \
    && echo "installing crond" \
    # comments inside continuations are skipped
    && true
ADD --chown=0:0 https://example.com/crond.conf /etc/crond.conf
VOLUME ["/var/lib/crond", "/var/log/crond"]
STOPSIGNAL SIGQUIT
USER root
ENTRYPOINT ["/docker-entrypoint.sh"]
CMD ["crond"]
