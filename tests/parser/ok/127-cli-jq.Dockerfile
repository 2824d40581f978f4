FROM alpine:3.20 AS download
ARG JQ_VERSION=1.7.1
ARG TARGETARCH=amd64
ADD https://example.com/releases/jq/v${JQ_VERSION}/jq_linux_${TARGETARCH}.tar.gz /tmp/jq.tar.gz
RUN tar -xzf /tmp/jq.tar.gz -C /usr/local/bin jq \
 && chmod +x /usr/local/bin/jq

FROM alpine:3.20
RUN apk add --no-cache ca-certificates git openssh-client
COPY --from=download /usr/local/bin/jq /usr/local/bin/jq
WORKDIR /work
ENTRYPOINT ["/usr/local/bin/jq"]
CMD ["--version"]
