FROM busybox
RUN echo C:\\\\
RUN echo next
