FROM busybox:local
RUN addgroup -g 1500 app \
 && adduser -D -u 1500 -G app -h /home/app app \
 && mkdir -p /data \
 && chown app:app /data
COPY --chown=app:app app.conf /home/app/app.conf
USER app
WORKDIR /home/app
VOLUME ["/data"]
CMD ["sh", "-c", "id && cat app.conf"]
