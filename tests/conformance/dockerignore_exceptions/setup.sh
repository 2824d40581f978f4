mkdir -p dir/sub dir/other
echo 1 > keep-me; echo 2 > keep.txt; echo 3 > gone.txt
echo 4 > dir/sub/in.txt; echo 5 > dir/sub/drop.txt; echo 6 > dir/other/o.txt
echo 7 > spaced.txt; echo 8 > keep.bak; echo 9 > important.bak
