FROM nginx
HEALTHCHECK NONE
HEALTHCHECK --interval=5m --timeout=3s CMD curl -f http://localhost/ || exit 1
HEALTHCHECK --start-period=30s --start-interval=5s --retries=10 CMD ["curl", "-f", "http://localhost/"]
