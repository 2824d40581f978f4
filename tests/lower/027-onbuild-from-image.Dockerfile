FROM onbuild-base:1
RUN echo after triggers
