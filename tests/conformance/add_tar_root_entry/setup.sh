mkdir -p t && echo in > t/in && chmod 700 t && chown 1234:5678 t
tar -C t --numeric-owner -cf root700.tar .
chmod 755 t && chown 0:0 t
tar -C t --numeric-owner -cf root755.tar .
rm -rf t
