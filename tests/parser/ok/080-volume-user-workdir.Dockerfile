FROM busybox
VOLUME /data
VOLUME /a /b /c
VOLUME ["/json1", "/json2"]
USER 1000:1000
USER nobody
WORKDIR /app
WORKDIR sub/dir
WORKDIR $HOME/work
