FROM alpine
ADD https://example.com/file.txt /tmp/
ADD https://example.com/dir/ /tmp/dir/
ADD git@github.com:moby/buildkit.git#master:docs /docs
ADD https://github.com/moby/moby.git?ref=v24.0.0&subdir=contrib /contrib
