FROM busybox:local
ENV BASE=/opt
ARG DIR=$BASE/app
RUN echo $DIR
