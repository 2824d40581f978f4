FROM alpine:3.20 AS download
ARG AWSCLI_VERSION=2.17.0
ARG TARGETARCH=amd64
ADD https://example.com/releases/awscli/v${AWSCLI_VERSION}/awscli_linux_${TARGETARCH}.tar.gz /tmp/awscli.tar.gz
RUN tar -xzf /tmp/awscli.tar.gz -C /usr/local/bin awscli \
 && chmod +x /usr/local/bin/awscli

FROM alpine:3.20
RUN apk add --no-cache ca-certificates git openssh-client
COPY --from=download /usr/local/bin/awscli /usr/local/bin/awscli
WORKDIR /work
ENTRYPOINT ["/usr/local/bin/awscli"]
CMD ["--version"]
