FROM busybox:local
RUN mkdir -p /www && echo '<h1>hello</h1>' > /www/index.html
WORKDIR /www
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s CMD wget -q -O /dev/null http://127.0.0.1:8080/ || exit 1
CMD ["httpd", "-f", "-v", "-p", "8080", "-h", "/www"]
