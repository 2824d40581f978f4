mkdir -p tree/sub && echo shared > tree/a && ln tree/a tree/b && ln tree/a tree/sub/c
