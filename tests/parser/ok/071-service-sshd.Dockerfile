FROM centos:7
MAINTAINER Jane Doe <jane@example.com>
LABEL version="1.6" description="sshd image" maintainer="ops@example.com"
ENV DEBIAN_FRONTEND noninteractive
RUN set -x \
    && echo "installing sshd" \
    # comments inside continuations are skipped
    && true
ADD --chown=0:0 https://example.com/sshd.conf /etc/sshd.conf
VOLUME ["/var/lib/sshd", "/var/log/sshd"]
EXPOSE 22/tcp
STOPSIGNAL SIGQUIT
USER root
ENTRYPOINT ["/docker-entrypoint.sh"]
CMD ["sshd"]
