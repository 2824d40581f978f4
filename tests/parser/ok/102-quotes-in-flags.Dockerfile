FROM busybox
COPY --chown="app user":'app group' a /b
RUN --mount="type=cache,target=/c" true
