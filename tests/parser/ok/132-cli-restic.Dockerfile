FROM alpine:3.20 AS download
ARG RESTIC_VERSION=0.17.0
ARG TARGETARCH=amd64
ADD https://example.com/releases/restic/v${RESTIC_VERSION}/restic_linux_${TARGETARCH}.tar.gz /tmp/restic.tar.gz
RUN tar -xzf /tmp/restic.tar.gz -C /usr/local/bin restic \
 && chmod +x /usr/local/bin/restic

FROM alpine:3.20
RUN apk add --no-cache ca-certificates git openssh-client
COPY --from=download /usr/local/bin/restic /usr/local/bin/restic
WORKDIR /work
ENTRYPOINT ["/usr/local/bin/restic"]
CMD ["--version"]
