FROM busybox:local
COPY --parents src/./pkg/*.go /ws/
COPY --exclude=*.md --exclude=docs . /app/
