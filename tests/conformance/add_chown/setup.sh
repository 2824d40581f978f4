mkdir -p t/sub && echo inner > t/sub/f && chown -R 4321:4321 t
tar -C t -czf archive.tar.gz . && rm -rf t
