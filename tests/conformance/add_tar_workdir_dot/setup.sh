mkdir -p t/in && echo x > t/in/x && echo top > t/top
tar -C t -cf a.tar .
rm -rf t
