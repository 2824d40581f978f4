mkdir -p dir/x other/a/b
echo 1 > dir/keep; echo 2 > dir/x/drop; echo 3 > other/a/b/t.txt; echo 4 > other/a/no.md; echo 5 > top
