mkdir -p t && echo x > t/x
tar -C t -cf a.tar x
rm -rf t
