FROM busybox:local
RUN echo 0 > /f0
RUN echo 1 > /f1
RUN echo 2 > /f2
RUN echo 3 > /f3
RUN echo 4 > /f4
RUN echo 5 > /f5
RUN echo 6 > /f6
RUN echo 7 > /f7
RUN echo 8 > /f8
RUN echo 9 > /f9
RUN echo 10 > /f10
RUN echo 11 > /f11
