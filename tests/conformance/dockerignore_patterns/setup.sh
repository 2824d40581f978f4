mkdir -p a/b/c a/b/keep node_modules/x sub/node_modules excluded-dir/reincluded sub2 trailing-slash
echo 1 > abs-root
echo 3 > a/b/c/deep.txt; echo 4 > a/b/keep/deep.txt; echo 5 > a/deep.txt
echo 6 > node_modules/x/f; echo 7 > sub/node_modules/f
echo 8 > excluded-dir/gone; echo 9 > excluded-dir/reincluded/back
echo 10 > sub2/mid.txt; echo 11 > mid.txt
echo 12 > a.one; echo 13 > ab.one; echo 14 > x.chr; echo 15 > z.chr
echo 16 > dot-prefixed; echo 17 > trailing-slash/t
