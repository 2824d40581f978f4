FROM busybox:local
ARG PORT=8080
ARG COMMIT=unknown
LABEL org.opencontainers.image.revision=$COMMIT \
      org.opencontainers.image.title="demo service"
EXPOSE ${PORT}
ENV PORT=${PORT}
CMD ["sh", "-c", "httpd -f -p $PORT"]
