FROM busybox:local
ARG NAME=world
COPY <<EOF /hello.txt
hello $NAME
EOF
COPY <<'RAW' /raw.txt
raw $NAME
RAW
