FROM alpine:3.20 AS download
ARG GH_VERSION=2.55.0
ARG TARGETARCH=amd64
ADD https://example.com/releases/gh/v${GH_VERSION}/gh_linux_${TARGETARCH}.tar.gz /tmp/gh.tar.gz
RUN tar -xzf /tmp/gh.tar.gz -C /usr/local/bin gh \
 && chmod +x /usr/local/bin/gh

FROM alpine:3.20
RUN apk add --no-cache ca-certificates git openssh-client
COPY --from=download /usr/local/bin/gh /usr/local/bin/gh
WORKDIR /work
ENTRYPOINT ["/usr/local/bin/gh"]
CMD ["--version"]
