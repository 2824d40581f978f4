FROM busybox:local
COPY --from=nginx:latest /etc/nginx/nginx.conf /nginx.conf
