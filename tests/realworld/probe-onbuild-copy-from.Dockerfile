FROM alpine:3.19 AS assets
RUN mkdir -p /assets && echo asset > /assets/a.txt

FROM alpine:3.19 AS base
ONBUILD COPY --from=assets /assets /srv/assets
ONBUILD RUN ls /srv/assets

FROM base
RUN cat /srv/assets/a.txt
