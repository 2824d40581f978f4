# dockerignore: vendor
FROM golang:1.22
ENV VENDOR_DIR=vendor
WORKDIR /src
COPY ${VENDOR_DIR}/modules.txt ./vendor/
COPY go.mod ./
# expect-warning: CopyIgnoredFile
