FROM busybox:local AS tools
RUN echo t > /tool
FROM busybox:local
RUN --mount=type=cache,target=/cache,id=c1,sharing=locked \
    --mount=type=bind,from=tools,source=/tool,target=/usr/bin/tool \
    --mount=type=tmpfs,target=/tmp,size=1m \
    --mount=type=secret,id=tok \
    --mount=type=ssh \
    --mount=type=bind,target=/ctx \
    true
