FROM alpine:3.19
ARG APP_HOME=/opt/app
ENV APP_HOME=${APP_HOME}
WORKDIR ${APP_HOME}
COPY . ${APP_HOEM}/src
ENV PATH=${APP_HOME}/bin:$PATH
# expect-warning: UndefinedVar
