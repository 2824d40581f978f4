mkdir -p t/d && echo payload > t/d/p && echo top > t/top
tar -C t -cjf a.tar.bz2 . && tar -C t -cJf a.tar.xz . && tar -C t -czf a.tgz d
tar -C t -czf a.unknown top
echo just-gzipped | gzip > plain.gz
rm -rf t
