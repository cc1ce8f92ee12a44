# peak.sh — sourced by the bench scripts: the machine's float32 FMA peak, two ways.
# Nominal: cores x 2 FMA units x LANES float lanes x 2 flops x clock. LANES is
# 16 where the FMA units are 512 bits wide (AVX-512 CPUs, but for AMD's Zen 4,
# family 25, which splits 512-bit operations into two 256-bit halves), else 8
# (AVX2); GHZ defaults to the "cpu MHz" of /proc/cpuinfo. Set either to
# override. Measured: bench/peak_fma, every core running independent FMAs at
# once, now; a core that boosts runs above the listed clock, and a shared host
# can take some of it away, so this is the figure the fractions use.
# Sets CORES, LANES, GHZ, GHZ_FROM, PEAK_NOMINAL, PEAK_MEASURED and PEAK
# (GFLOP/s: PEAK_MEASURED, or PEAK_NOMINAL if GHZ or LANES was given or
# peak_fma cannot be built).
CORES=$(nproc)
peak_set=${GHZ:-}${LANES:-}
if [ -z "${LANES:-}" ]; then
    LANES=8
    if grep -qw avx512f /proc/cpuinfo && ! grep -q '^cpu family[[:space:]]*: 25$' /proc/cpuinfo; then LANES=16; fi
fi
GHZ_FROM="GHZ"
[ -n "${GHZ:-}" ] || GHZ_FROM="cpu MHz in /proc/cpuinfo"
GHZ=${GHZ:-$(awk -F: '/^cpu MHz/ { print $2 / 1000; exit }' /proc/cpuinfo)}
PEAK_NOMINAL=$(awk -v c="$CORES" -v l="$LANES" -v g="$GHZ" 'BEGIN { print c * 2 * l * 2 * g }')
peak_dir=${root:-${ROOT:-$(dirname "$0")/..}}/bench # (the sourcing script's repository root)
PEAK_MEASURED=
make -s -C "$peak_dir" peak_fma >&2 2>/dev/null && PEAK_MEASURED=$("$peak_dir/peak_fma" "$CORES") || PEAK_MEASURED=
PEAK=$PEAK_NOMINAL
[ -z "$peak_set" ] && [ -n "$PEAK_MEASURED" ] && PEAK=$PEAK_MEASURED
PEAK_LINE="peak $PEAK GFLOP/s: measured ${PEAK_MEASURED:-(no peak_fma)} by bench/peak_fma on $CORES cores; nominal $PEAK_NOMINAL = $CORES cores x 2 FMA units x $LANES lanes x 2 flops x $GHZ GHz ($GHZ_FROM)"
