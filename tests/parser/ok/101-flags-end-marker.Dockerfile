FROM busybox
COPY -- --weird-name /dst
RUN -- echo after marker
