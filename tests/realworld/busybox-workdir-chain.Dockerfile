FROM busybox:local
WORKDIR /opt
WORKDIR app
WORKDIR ../data/./sub
RUN pwd > /where
ENV DIR=/srv
WORKDIR $DIR/www
RUN pwd >> /where
