FROM busybox:local
RUN <<EOF
#!/bin/sh
echo script
EOF
