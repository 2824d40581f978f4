FROM alpine AS s0
RUN echo 0 > /f0
FROM alpine AS s1
RUN echo 1 > /f1
FROM alpine AS s2
RUN echo 2 > /f2
FROM alpine AS s3
RUN echo 3 > /f3
FROM alpine AS s4
RUN echo 4 > /f4
FROM alpine AS s5
RUN echo 5 > /f5
FROM alpine AS s6
RUN echo 6 > /f6
FROM alpine AS s7
RUN echo 7 > /f7
FROM alpine AS s8
RUN echo 8 > /f8
FROM alpine AS s9
RUN echo 9 > /f9
FROM alpine AS s10
RUN echo 10 > /f10
FROM alpine AS s11
RUN echo 11 > /f11
FROM alpine AS s12
RUN echo 12 > /f12
FROM alpine AS s13
RUN echo 13 > /f13
FROM alpine AS s14
RUN echo 14 > /f14
FROM alpine AS s15
RUN echo 15 > /f15
FROM alpine AS s16
RUN echo 16 > /f16
FROM alpine AS s17
RUN echo 17 > /f17
FROM alpine AS s18
RUN echo 18 > /f18
FROM alpine AS s19
RUN echo 19 > /f19
FROM scratch
COPY --from=s0 /f0 /
COPY --from=s1 /f1 /
COPY --from=s2 /f2 /
COPY --from=s3 /f3 /
COPY --from=s4 /f4 /
COPY --from=s5 /f5 /
COPY --from=s6 /f6 /
COPY --from=s7 /f7 /
COPY --from=s8 /f8 /
COPY --from=s9 /f9 /
COPY --from=s10 /f10 /
COPY --from=s11 /f11 /
COPY --from=s12 /f12 /
COPY --from=s13 /f13 /
COPY --from=s14 /f14 /
COPY --from=s15 /f15 /
COPY --from=s16 /f16 /
COPY --from=s17 /f17 /
COPY --from=s18 /f18 /
COPY --from=s19 /f19 /
