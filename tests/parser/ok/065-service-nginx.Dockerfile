FROM nginx:1.27-alpine
MAINTAINER Jane Doe <jane@example.com>
LABEL version="1.0" description="nginx image" maintainer="ops@example.com"
ENV DEBIAN_FRONTEND noninteractive
RUN set -x \
    && echo "installing nginx" \
    # comments inside continuations are skipped
    && true
ADD --chown=0:0 https://example.com/nginx.conf /etc/nginx.conf
VOLUME ["/var/lib/nginx", "/var/log/nginx"]
EXPOSE 80/tcp
STOPSIGNAL SIGQUIT
USER root
ENTRYPOINT ["/docker-entrypoint.sh"]
CMD ["nginx"]
