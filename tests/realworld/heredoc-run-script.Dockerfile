# syntax=docker/dockerfile:1
FROM debian:bookworm-slim
RUN <<EOF
set -eux
apt-get update
apt-get install -y --no-install-recommends ca-certificates curl
rm -rf /var/lib/apt/lists/*
EOF
RUN <<-EOT bash
	set -euo pipefail
	echo "tabs are stripped with <<-"
	mkdir -p /opt/app
EOT
CMD ["bash"]
