FROM busybox:local
RUN echo zero > /stage0.txt

FROM busybox:local
RUN echo one > /stage1.txt

FROM busybox:local
COPY --from=0 /stage0.txt /from/
COPY --from=1 /stage1.txt /from/
RUN cat /from/stage0.txt /from/stage1.txt
