FROM busybox:local AS base
RUN mkdir /app
ONBUILD RUN echo "triggered" > /app/trigger
ONBUILD WORKDIR /app

FROM base
RUN cat /app/trigger
CMD ["ls", "-la", "/app"]
