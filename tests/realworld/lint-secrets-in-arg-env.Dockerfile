FROM alpine:3.19
ARG GITHUB_TOKEN
ARG AWS_SECRET_ACCESS_KEY
ENV DB_PASSWORD=changeme
# Not secrets: the allow-list words.
ARG PUBLIC_KEY_FILE=/etc/key.pub
ENV KEY_VERSION=2
RUN echo building
# expect-warning: SecretsUsedInArgOrEnv
# expect-warning: SecretsUsedInArgOrEnv
# expect-warning: SecretsUsedInArgOrEnv
