FROM alpine:3.19
# check=skip=JSONArgsRecommended
ENTRYPOINT my-entrypoint.sh
ENV HOME_DIR /root
# expect-warning: LegacyKeyValueFormat
