FROM busybox:local
SHELL ["/bin/ash", "-eo", "pipefail", "-c"]
RUN echo a | cat
CMD echo b
ENTRYPOINT echo c
