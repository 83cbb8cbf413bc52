# Shared by the bench scripts (sourced): medians, ratios, verdicts.
# Figures that could not be measured are "n/a" and never meet a target.

# The median of the numbers on stdin, one per line.
median() {
    sort -g | awk '{ v[NR] = $1 } END {
        if (NR == 0) { print "n/a"; exit }
        if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
# A / B to two decimals.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.2f", a / b; else print "n/a" }'; }
# Whether ratio R meets a target of at least / at most T.
at_least() { awk -v r="$1" -v t="$2" 'BEGIN { print (r != "n/a" && r + 0 >= t) ? "met" : "MISSED" }'; }
at_most() { awk -v r="$1" -v t="$2" 'BEGIN { print (r != "n/a" && r + 0 <= t) ? "met" : "MISSED" }'; }
