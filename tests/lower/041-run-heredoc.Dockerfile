FROM busybox:local
RUN <<EOF
echo one
echo two
EOF
