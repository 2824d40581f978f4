FROM alpine:3.20 AS download
ARG K9S_VERSION=0.32.5
ARG TARGETARCH=amd64
ADD https://example.com/releases/k9s/v${K9S_VERSION}/k9s_linux_${TARGETARCH}.tar.gz /tmp/k9s.tar.gz
RUN tar -xzf /tmp/k9s.tar.gz -C /usr/local/bin k9s \
 && chmod +x /usr/local/bin/k9s

FROM alpine:3.20
RUN apk add --no-cache ca-certificates git openssh-client
COPY --from=download /usr/local/bin/k9s /usr/local/bin/k9s
WORKDIR /work
ENTRYPOINT ["/usr/local/bin/k9s"]
CMD ["--version"]
