FROM busybox:local
ONBUILD RUN echo later
ONBUILD COPY . /app
