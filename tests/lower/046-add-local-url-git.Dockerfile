FROM busybox:local
ADD a.tar.gz /unpacked/
ADD --unpack=false b.tar /b/
ADD https://example.com/f.txt /f/
ADD --checksum=sha256:24454f830cdb571e2c4ad15481119c43b3cafd48dd869a9b2945d1036d1dc68d https://example.com/g.tgz /g/
ADD https://github.com/moby/buildkit.git#v0.12.0:docs /docs
