FROM alpine:3.19
# Saved with a UTF-8 byte order mark.
RUN echo bom
CMD ["sh"]
