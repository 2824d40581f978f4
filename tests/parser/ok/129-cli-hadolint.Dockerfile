FROM alpine:3.20 AS download
ARG HADOLINT_VERSION=2.12.0
ARG TARGETARCH=amd64
ADD https://example.com/releases/hadolint/v${HADOLINT_VERSION}/hadolint_linux_${TARGETARCH}.tar.gz /tmp/hadolint.tar.gz
RUN tar -xzf /tmp/hadolint.tar.gz -C /usr/local/bin hadolint \
 && chmod +x /usr/local/bin/hadolint

FROM alpine:3.20
RUN apk add --no-cache ca-certificates git openssh-client
COPY --from=download /usr/local/bin/hadolint /usr/local/bin/hadolint
WORKDIR /work
ENTRYPOINT ["/usr/local/bin/hadolint"]
CMD ["--version"]
