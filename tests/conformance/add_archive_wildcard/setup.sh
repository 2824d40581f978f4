mkdir -p t1 t2 t3
echo one > t1/one && echo two > t2/two && echo three > t3/three
tar -C t1 -czf first.tar.gz . && tar -C t2 -czf second.tar.gz . && tar -C t3 -cjf third.tar.bz2 .
rm -rf t1 t2 t3
