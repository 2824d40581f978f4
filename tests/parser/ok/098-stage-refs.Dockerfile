FROM alpine AS base
RUN echo base > /base
FROM base AS build1
RUN echo one >> /base
FROM base AS build2
RUN echo two >> /base
FROM scratch
COPY --from=build1 /base /one
COPY --from=build2 /base /two
COPY --from=0 /base /zero
COPY --from=nginx:latest /etc/nginx/nginx.conf /nginx.conf
