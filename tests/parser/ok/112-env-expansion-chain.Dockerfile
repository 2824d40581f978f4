FROM busybox
ENV BASE=/opt
ENV APP=${BASE}/app BIN=$BASE/bin
ENV PATH=$BIN:$PATH
WORKDIR ${APP}
COPY . ${APP:-/fallback}/
RUN echo ${APP#/opt} ${APP%/app} ${APP/opt/srv}
