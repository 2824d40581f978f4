FROM alpine:3.20 AS download
ARG HELM_VERSION=3.15.4
ARG TARGETARCH=amd64
ADD https://example.com/releases/helm/v${HELM_VERSION}/helm_linux_${TARGETARCH}.tar.gz /tmp/helm.tar.gz
RUN tar -xzf /tmp/helm.tar.gz -C /usr/local/bin helm \
 && chmod +x /usr/local/bin/helm

FROM alpine:3.20
RUN apk add --no-cache ca-certificates git openssh-client
COPY --from=download /usr/local/bin/helm /usr/local/bin/helm
WORKDIR /work
ENTRYPOINT ["/usr/local/bin/helm"]
CMD ["--version"]
