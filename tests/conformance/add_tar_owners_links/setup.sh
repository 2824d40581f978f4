mkdir -p t/d/e
echo data > t/d/file
ln t/d/file t/d/hard
ln -s file t/d/soft
ln -s /etc/passwd t/abs
chmod 4755 t/d/file
chmod 1777 t/d/e
chmod 0640 t/d
chown 1234:5678 t/d/file
chown 42:43 t/d/e
tar -C t -cf meta.tar --numeric-owner .
rm -rf t
