: > zero.tar
tar -cf blocks.tar -T /dev/null
tar -czf empty.tar.gz -T /dev/null
