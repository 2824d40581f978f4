FROM busybox
RUN apt-get update \
# a comment in the middle

    && apt-get install -y \
        curl \
        # another
        jq
RUN echo done \
