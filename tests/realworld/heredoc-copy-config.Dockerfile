# syntax=docker/dockerfile:1.4
FROM nginx:1.25-alpine
COPY <<EOF /etc/nginx/conf.d/default.conf
server {
    listen 80;
    server_name _;
    location / {
        root /usr/share/nginx/html;
        try_files \$uri /index.html;
    }
}
EOF
COPY --chmod=0755 <<'EOF' /docker-entrypoint.d/99-hello.sh
#!/bin/sh
echo "hello from $HOSTNAME"
EOF
COPY <<EOF1 <<EOF2 /usr/share/nginx/html/
EOF1
<html><body>index</body></html>
EOF2
