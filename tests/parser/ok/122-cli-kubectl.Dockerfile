FROM alpine:3.20 AS download
ARG KUBECTL_VERSION=1.31.0
ARG TARGETARCH=amd64
ADD https://example.com/releases/kubectl/v${KUBECTL_VERSION}/kubectl_linux_${TARGETARCH}.tar.gz /tmp/kubectl.tar.gz
RUN tar -xzf /tmp/kubectl.tar.gz -C /usr/local/bin kubectl \
 && chmod +x /usr/local/bin/kubectl

FROM alpine:3.20
RUN apk add --no-cache ca-certificates git openssh-client
COPY --from=download /usr/local/bin/kubectl /usr/local/bin/kubectl
WORKDIR /work
ENTRYPOINT ["/usr/local/bin/kubectl"]
CMD ["--version"]
