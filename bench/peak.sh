# peak.sh — sourced by the bench scripts: the machine's float32 FMA peak.
# Peak = cores x 2 FMA units x LANES float lanes x 2 flops x clock. LANES is
# 16 where the FMA units are 512 bits wide (AVX-512 CPUs, but for AMD's Zen 4,
# family 25, which splits 512-bit operations into two 256-bit halves), else 8
# (AVX2); GHZ defaults to the "cpu MHz" of /proc/cpuinfo. Set either to
# override. Sets CORES, LANES, GHZ, GHZ_FROM and PEAK (GFLOP/s).
CORES=$(nproc)
if [ -z "${LANES:-}" ]; then
    LANES=8
    if grep -qw avx512f /proc/cpuinfo && ! grep -q '^cpu family[[:space:]]*: 25$' /proc/cpuinfo; then LANES=16; fi
fi
GHZ_FROM="GHZ"
[ -n "${GHZ:-}" ] || GHZ_FROM="cpu MHz in /proc/cpuinfo"
GHZ=${GHZ:-$(awk -F: '/^cpu MHz/ { print $2 / 1000; exit }' /proc/cpuinfo)}
PEAK=$(awk -v c="$CORES" -v l="$LANES" -v g="$GHZ" 'BEGIN { print c * 2 * l * 2 * g }')
