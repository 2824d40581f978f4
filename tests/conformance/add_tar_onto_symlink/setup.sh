mkdir -p t/x/inner && echo through > t/x/inner/file && echo top > t/top
tar -C t -cf a.tar .
rm -rf t
