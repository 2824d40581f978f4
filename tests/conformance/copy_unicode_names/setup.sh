echo space > "with space.txt"
echo unicode > "ünïcödé.txt"
mkdir -p "日本語/sub dir" && echo nested > "日本語/sub dir/ファイル"
