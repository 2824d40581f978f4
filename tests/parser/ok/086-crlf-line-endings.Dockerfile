FROM busybox
RUN echo one \
    two
CMD ["sh"]
