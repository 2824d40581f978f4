# dockerignore: build/
# dockerignore: **/*.log
FROM alpine:3.19
ADD build/app.tar.gz /opt/
COPY logs/debug.log /var/log/
COPY src/ /src/
# expect-warning: CopyIgnoredFile
# expect-warning: CopyIgnoredFile
