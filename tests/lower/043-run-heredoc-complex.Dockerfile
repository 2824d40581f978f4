FROM busybox:local
RUN cat <<A > /a
alpha
A
