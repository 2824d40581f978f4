# Copyright (c) Example Corp
# SPDX-License-Identifier: MPL-2.0

FROM alpine:3.19 AS default

ARG PRODUCT_VERSION
ARG BIN_NAME
ARG PRODUCT_NAME=$BIN_NAME
ARG TARGETOS TARGETARCH

LABEL name="Tool" \
      maintainer="Team <team@example.com>" \
      vendor="Example" \
      version=$PRODUCT_VERSION \
      release=$PRODUCT_VERSION \
      summary="A tool." \
      description="A tool that does things."

RUN addgroup $PRODUCT_NAME && \
    adduser -S -G $PRODUCT_NAME $PRODUCT_NAME

COPY dist/$TARGETOS/$TARGETARCH/$BIN_NAME /bin/

USER $PRODUCT_NAME
ENTRYPOINT ["/bin/tool"]
