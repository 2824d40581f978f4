FROM busybox
SHELL ["/bin/sh", "-eu", "-c"]
RUN echo uses the new shell
CMD echo cmd also uses it
SHELL ["/bin/ash", "-c"]
ENTRYPOINT echo entrypoint
