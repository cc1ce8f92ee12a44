# torch_env.sh — sourced by the bench scripts that run PyTorch: sets
# TORCH_MALLOC, the environment every PyTorch process runs with.
# glibc gives freed heap memory back to the system (trimming) and maps big
# blocks afresh, so some PyTorch processes page-fault every large temporary
# of every iteration (conv 16->32 forward+backward at 33-49 ms instead of
# 8.7-9.3; training 7-20% slower): PyTorch runs with both turned off, its
# faster configuration. (nabla reuses one arena per step: no effect there.)
TORCH_MALLOC="MALLOC_MMAP_THRESHOLD_=1073741824 MALLOC_TRIM_THRESHOLD_=4294967296"
