# syntax=docker/dockerfile:1.4
FROM ubuntu:24.04
RUN <<EOF
set -eux
apt-get update && apt-get install -y curl
mkdir -p /opt/app
EOF
RUN <<-'SCRIPT' bash
	set -e
	echo "no $EXPANSION here"
	SCRIPT
COPY <<EOF /etc/app.conf
listen = 0.0.0.0:8080
home = ${HOME:-/root}
EOF
COPY <<'NOEXPAND' <<CONF2 /etc/
literal $HOME
NOEXPAND
second file
CONF2
RUN <<EOT python3
print("hello from python")
EOT
