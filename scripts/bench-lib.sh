# Shared by the bench-*.sh scripts (sourced, not run): timing the fastest of RUNS runs and
# printing a peer-vs-ours row.

# "wall cpu" seconds of the fastest of RUNS runs of "$@" (output discarded; must succeed).
best() {
    local bw="" bc="" out w c
    for _ in $(seq "$RUNS"); do
        out=$( { TIMEFORMAT='%R %U %S'; time "$@" > /dev/null 2>&1 || echo FAIL; } 2>&1 )
        case "$out" in *FAIL*) echo "FAILED: $*" >&2; exit 1;; esac
        w=$(echo "$out" | tail -1 | cut -d' ' -f1)
        c=$(echo "$out" | tail -1 | awk '{print $2 + $3}')
        if [ -z "$bw" ] || [ "$(echo "$w < $bw" | bc -l)" = 1 ]; then bw=$w; bc=$c; fi
    done
    echo "$bw $bc"
}

# Wall seconds only of the fastest of RUNS runs of "$@".
best_wall() {
    local r
    r=$(best "$@") || exit 1
    echo "${r%% *}"
}

# One table row: name "peer_wall peer_cpu" "ours_wall ours_cpu", with the wall ratio peer/ours.
row() {
    set -- "$1" $2 $3
    printf '%-44s %8.2f %8.2f %8.2f %8.2f %6.2fx\n' "$1" "$2" "$3" "$4" "$5" "$(echo "$2 / $4" | bc -l)"
}
