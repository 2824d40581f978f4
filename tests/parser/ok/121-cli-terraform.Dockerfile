FROM alpine:3.20 AS download
ARG TERRAFORM_VERSION=1.9.5
ARG TARGETARCH=amd64
ADD https://example.com/releases/terraform/v${TERRAFORM_VERSION}/terraform_linux_${TARGETARCH}.tar.gz /tmp/terraform.tar.gz
RUN tar -xzf /tmp/terraform.tar.gz -C /usr/local/bin terraform \
 && chmod +x /usr/local/bin/terraform

FROM alpine:3.20
RUN apk add --no-cache ca-certificates git openssh-client
COPY --from=download /usr/local/bin/terraform /usr/local/bin/terraform
WORKDIR /work
ENTRYPOINT ["/usr/local/bin/terraform"]
CMD ["--version"]
