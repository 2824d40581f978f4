mkdir -p t/a/b/c t/x
echo c > t/a/b/c/file
echo x > t/x/y
tar -C t -cf implied.tar a/b/c/file x/y
rm -rf t
