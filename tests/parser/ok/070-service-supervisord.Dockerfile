FROM ubuntu:22.04
MAINTAINER Jane Doe <jane@example.com>
LABEL version="1.5" description="supervisord image" maintainer="ops@example.com"
ENV DEBIAN_FRONTEND noninteractive
RUN set -x \
    && echo "installing supervisord" \
    # comments inside continuations are skipped
    && true
ADD --chown=0:0 https://example.com/supervisord.conf /etc/supervisord.conf
VOLUME ["/var/lib/supervisord", "/var/log/supervisord"]
EXPOSE 9001/tcp
STOPSIGNAL SIGQUIT
USER root
ENTRYPOINT ["/docker-entrypoint.sh"]
CMD ["supervisord"]
