# syntax=docker/dockerfile:1
FROM python:3.12-slim AS build
ARG UID=1000
ARG GID=1000
ARG TARGETARCH
ARG CACHE_ID=pip
RUN --mount=type=cache,target=/home/app/.cache,id=${CACHE_ID}-${TARGETARCH},uid=${UID},gid=${GID} \
    pip install --user -r /dev/null
ARG BUILDER=build
FROM python:3.12-slim
ARG BUILDER=build
ARG UID=1000
ARG GID=1000
ARG PORT=8000
COPY --from=${BUILDER} --chown=${UID}:${GID} /home/app/.local /home/app/.local
USER ${UID}:${GID}
EXPOSE ${PORT}/tcp
