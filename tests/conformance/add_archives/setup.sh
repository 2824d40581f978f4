mkdir -p tmp/a/b && echo inside > tmp/a/b/f && echo top > tmp/top && ln -s top tmp/link
chmod 750 tmp/a
tar -C tmp -cf plain.tar . && tar -C tmp -czf gz.tar.gz a top && cp gz.tar.gz data.dat && cp gz.tar.gz renamed.tgz
echo "not really a tar" > notes.tar
rm -rf tmp
