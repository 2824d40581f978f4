FROM httpd:2.4
MAINTAINER Jane Doe <jane@example.com>
LABEL version="1.1" description="httpd-foreground image" maintainer="ops@example.com"
ENV DEBIAN_FRONTEND noninteractive
RUN set -x \
    && echo "installing httpd-foreground" \
    # comments inside continuations are skipped
    && true
ADD --chown=0:0 https://example.com/httpd-foreground.conf /etc/httpd-foreground.conf
VOLUME ["/var/lib/httpd-foreground", "/var/log/httpd-foreground"]
EXPOSE 80/tcp
STOPSIGNAL SIGQUIT
USER root
ENTRYPOINT ["/docker-entrypoint.sh"]
CMD ["httpd-foreground"]
