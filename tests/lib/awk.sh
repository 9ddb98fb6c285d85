# awk functions that tests/lib and bench/ share, as texts to put before an
# awk program: awk "$AWK_MEDIAN"' ... median(list) ... '

# median(LIST): the median of a space-separated list of numbers (of an even
# count, the mean of the middle two)
AWK_MEDIAN='
function median(list,   a, n, i, j, t) {
	n = split(list, a, " ")
	for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] + 0 > t + 0; j--) a[j + 1] = a[j]; a[j + 1] = t }
	return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}'
