FROM alpine AS src
RUN mkdir -p /out && touch /out/a /out/b
FROM alpine
COPY --from=src --chown=1000:1000 --chmod=0640 /out/a /dst/
COPY --link --from=src /out/b /linked/
COPY --parents ./src/./pkg/**/*.go /workspace/
COPY --exclude=*.md --exclude=docs/ . /app/
COPY ["file with spaces.txt", "/opt/dest dir/"]
COPY --chmod=u+rwx,g+rx script.sh /usr/local/bin/
ADD --checksum=sha256:24454f830cdb571e2c4ad15481119c43b3cafd48dd869a9b2945d1036d1dc68d https://example.com/archive.tar.gz /tmp/
ADD --keep-git-dir=true https://github.com/moby/buildkit.git#v0.12.0 /buildkit
ADD --unpack=false layer.tar /layers/
ADD --link vendor.tgz /vendor/
