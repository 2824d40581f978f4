# syntax=docker/dockerfile:1
FROM alpine:3.19
ARG SECRET_ID=npm_token
ARG CACHE_SHARING=shared
RUN --mount=type=secret,id=${SECRET_ID},target=/run/secrets/token \
    --mount=type=cache,target=/root/.cache,sharing=${CACHE_SHARING} \
    test -f /run/secrets/token || echo "no token"
# SECRET_ID names the secret, but BuildKit flags the word SECRET all the same.
# expect-warning: SecretsUsedInArgOrEnv
