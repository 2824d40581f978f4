FROM alpine:3.20 AS download
ARG YQ_VERSION=4.44.3
ARG TARGETARCH=amd64
ADD https://example.com/releases/yq/v${YQ_VERSION}/yq_linux_${TARGETARCH}.tar.gz /tmp/yq.tar.gz
RUN tar -xzf /tmp/yq.tar.gz -C /usr/local/bin yq \
 && chmod +x /usr/local/bin/yq

FROM alpine:3.20
RUN apk add --no-cache ca-certificates git openssh-client
COPY --from=download /usr/local/bin/yq /usr/local/bin/yq
WORKDIR /work
ENTRYPOINT ["/usr/local/bin/yq"]
CMD ["--version"]
