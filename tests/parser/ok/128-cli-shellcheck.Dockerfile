FROM alpine:3.20 AS download
ARG SHELLCHECK_VERSION=0.10.0
ARG TARGETARCH=amd64
ADD https://example.com/releases/shellcheck/v${SHELLCHECK_VERSION}/shellcheck_linux_${TARGETARCH}.tar.gz /tmp/shellcheck.tar.gz
RUN tar -xzf /tmp/shellcheck.tar.gz -C /usr/local/bin shellcheck \
 && chmod +x /usr/local/bin/shellcheck

FROM alpine:3.20
RUN apk add --no-cache ca-certificates git openssh-client
COPY --from=download /usr/local/bin/shellcheck /usr/local/bin/shellcheck
WORKDIR /work
ENTRYPOINT ["/usr/local/bin/shellcheck"]
CMD ["--version"]
