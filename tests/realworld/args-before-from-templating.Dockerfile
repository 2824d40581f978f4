ARG REGISTRY=docker.io
ARG REPO=library
ARG BASE_IMAGE=debian
ARG BASE_TAG=bookworm-slim
FROM ${REGISTRY}/${REPO}/${BASE_IMAGE}:${BASE_TAG}
ARG BASE_TAG
LABEL org.opencontainers.image.base.name="${BASE_IMAGE}:${BASE_TAG}"
RUN echo "based on ${BASE_TAG}"
# BASE_IMAGE is a global ARG not redeclared in the stage: empty in LABEL.
# expect-warning: UndefinedVar
