FROM busybox:local
# This busybox has no adduser applet: write the account files directly.
RUN echo 'svc:x:1500:1500:svc:/home/svc:/bin/sh' >> /etc/passwd \
 && echo 'svc:x:1500:' >> /etc/group \
 && mkdir -p /home/svc /data \
 && chown svc:svc /home/svc /data
COPY --chown=svc:svc app.conf /home/svc/app.conf
USER svc
WORKDIR /home/svc
VOLUME ["/data"]
CMD ["sh", "-c", "id && cat app.conf"]
