FROM nginx:1.25
HEALTHCHECK --interval=5m --timeout=3s \
  CMD curl -f http://localhost/ || exit 1

FROM redis:7 AS cache
HEALTHCHECK --interval=10s --timeout=5s --retries=5 --start-period=30s CMD ["redis-cli", "ping"]

FROM postgres:16 AS db
HEALTHCHECK NONE
