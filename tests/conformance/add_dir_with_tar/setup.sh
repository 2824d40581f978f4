mkdir -p dir t && echo i > t/i
tar -C t -cf dir/inner.tar i && cp dir/inner.tar inner.tar
echo plain > dir/plain
rm -rf t
