FROM busybox:local AS build
WORKDIR /src
RUN printf '#!/bin/sh\necho "built at stage build"\n' > hello.sh \
 && chmod 0755 hello.sh \
 && mkdir -p /out \
 && cp hello.sh /out/hello

FROM scratch AS artifact
COPY --from=build /out/hello /hello

FROM busybox:local
COPY --from=artifact /hello /usr/local/bin/hello
RUN /usr/local/bin/hello
ENTRYPOINT ["/usr/local/bin/hello"]
