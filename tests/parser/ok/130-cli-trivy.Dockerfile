FROM alpine:3.20 AS download
ARG TRIVY_VERSION=0.54.1
ARG TARGETARCH=amd64
ADD https://example.com/releases/trivy/v${TRIVY_VERSION}/trivy_linux_${TARGETARCH}.tar.gz /tmp/trivy.tar.gz
RUN tar -xzf /tmp/trivy.tar.gz -C /usr/local/bin trivy \
 && chmod +x /usr/local/bin/trivy

FROM alpine:3.20
RUN apk add --no-cache ca-certificates git openssh-client
COPY --from=download /usr/local/bin/trivy /usr/local/bin/trivy
WORKDIR /work
ENTRYPOINT ["/usr/local/bin/trivy"]
CMD ["--version"]
