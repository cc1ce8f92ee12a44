/* emu.cc — a CUDA emulator: just enough of the CUDA runtime, of cuBLAS and
 * of the kernel language (declared in emu.h) for the backend's .cu files to
 * compile with the host C++ compiler and run on the CPU. It exists so that
 * the kernels' logic is tested on any machine, CI included, where no GPU is:
 * every thread of every block runs, with real __syncthreads barriers and
 * warp shuffles, and device memory is a region that host code cannot touch
 * (it is mapped PROT_NONE except while a launch, a copy or a cuBLAS call
 * runs), so the classic backend bug, host code dereferencing a device
 * pointer, dies with SIGSEGV at the faulting line instead of passing
 * silently as it would if device memory were plain malloc.
 *
 * How: blocks run one after another; a block's threads are coroutines on
 * the calling OS thread, each parked thread on its own small stack. A
 * coroutine runs thread after thread to completion and parks a thread only
 * when it waits at a barrier, so a kernel without barriers costs one
 * function call per thread, and one with barriers a stack switch per thread
 * and barrier.
 *
 * What it does NOT model: timing and occupancy; real concurrency between
 * threads, hence races (a racy kernel may pass here, though running it again
 * with NB_EMU_ORDER=reverse, below, shows most); warp-synchronous execution
 * without __syncwarp; the memory model (fences are no-ops, every write is
 * visible at once); atomics are trivially atomic; kernels may touch host
 * memory through pointers inside structs (pointer arguments are checked,
 * emu.h); errors are not sticky; streams are synchronous. Only the API subset
 * that src/cuda (and the selftest) uses exists. */

/* _longjmp between coroutine stacks jumps "down" a stack as far as glibc's
 * fortified longjmp can tell, which it would abort; nothing here needs the
 * checks. */
#undef _FORTIFY_SOURCE

#include "emu.h"

#include <cblas.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <iterator>
#include <map>
#include <mutex>

#if defined(__SANITIZE_ADDRESS__)
#define NB_EMU_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define NB_EMU_ASAN 1
#endif
#endif
#ifdef NB_EMU_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

#define MAX_THREADS 1024
#define MAX_DYN_SHARED (48 * 1024)
#define DEV_ALIGN 256
#ifdef NB_EMU_ASAN
#define STACK_SIZE (256 * 1024) /* ASan's redzones fatten every frame */
#else
#define STACK_SIZE (64 * 1024)
#endif

const nb_emu_thread *nb_emu_cur_;
const nb_emu_block *nb_emu_blk_;

/* --- errors ----------------------------------------------------------------- */

static thread_local cudaError_t last_error = cudaSuccess;

static cudaError_t fail(cudaError_t e) {
    if (e != cudaSuccess) last_error = e;
    return e;
}

static void die(const char *what) {
    fprintf(stderr, "nb_emu: %s\n", what);
    abort();
}

/* CUDA does not survive fork(): in the child of a process that has used it,
 * every call fails with cudaErrorInitializationError. The emulator does the
 * same, so that code which forks (tests of fatal errors) is caught using the
 * GPU in the child here, as it would be on a real one. The first call of the
 * runtime, cuBLAS or a launch makes the calling process the owner. */
static pid_t owner;
static bool forked() {
    if (!owner) owner = getpid();
    return owner != getpid();
}
void nb_emu_adopt_after_fork() { owner = getpid(); }
#define NOT_AFTER_FORK()                                                \
    do {                                                                \
        if (forked()) return fail(cudaErrorInitializationError);        \
    } while (0)
#define CUBLAS_NOT_AFTER_FORK()                                         \
    do {                                                                \
        if (forked()) return CUBLAS_STATUS_NOT_INITIALIZED;             \
    } while (0)

/* --- device memory ---------------------------------------------------------- */

/* One lock serializes everything that opens device memory, so that one host
 * thread closing the window cannot pull memory from under another's kernel.
 * in_call catches re-entry (a kernel calling the runtime), which would
 * otherwise deadlock. */
static std::mutex dev_mu;
static thread_local bool in_call;

struct dev_lock {
    std::unique_lock<std::mutex> lk;
    dev_lock() {
        if (in_call) die("a CUDA runtime or cuBLAS call from inside a kernel or another call");
        lk = std::unique_lock<std::mutex>(dev_mu);
        in_call = true;
    }
    ~dev_lock() { in_call = false; }
};

static unsigned char *region;    /* the reserved device memory */
static size_t region_size;       /* bytes */
static size_t page_size;
static volatile size_t open_len; /* bytes from region now readable, 0 when closed */

/* Allocator bookkeeping lives on the host heap, never in the region, so that
 * it stays valid whatever a kernel scribbles. Offsets into the region. */
struct used_block {
    size_t len, asked; /* asked: what cudaMalloc was asked for, the bound of every access check */
};
static std::map<size_t, size_t> free_blocks; /* offset -> bytes */
static std::map<size_t, used_block> used_blocks;
static size_t used_bytes;

static unsigned char *dyn_lo; /* dynamic shared memory: MAX_DYN_SHARED bytes, then a guard page */
static unsigned char *dyn_ptr;
static size_t dyn_bytes;

static size_t env_mem_bytes() {
    const char *s = getenv("NB_EMU_MEM");
    char *end;
    unsigned long long mib = s ? strtoull(s, &end, 10) : 0;
    if (!s || end == s || *end || mib == 0 || mib > (1ull << 24)) mib = 2048;
    return (size_t)mib << 20;
}

static void put_str(const char *s) {
    ssize_t r = write(2, s, strlen(s));
    (void)r;
}

static void put_hex(uintptr_t v) {
    char b[2 + 16 + 1];
    int i = (int)sizeof b - 1;
    b[i] = 0;
    do {
        b[--i] = "0123456789abcdef"[v & 15];
        v >>= 4;
    } while (v);
    b[--i] = 'x';
    b[--i] = '0';
    put_str(b + i);
}

static bool in_guard(uintptr_t a, const unsigned char *lo) {
    return lo && a >= (uintptr_t)lo - page_size && a < (uintptr_t)lo;
}

struct coro;
static coro *pool[MAX_THREADS];
static int npool;
static bool coro_guard_hit(uintptr_t a);

/* Names the bug before the process dies of it. SA_RESETHAND has restored
 * the default action when this runs: returning repeats the faulting access,
 * which now kills the process with SIGSEGV as if no handler existed. */
static void on_segv(int sig, siginfo_t *si, void *) {
    uintptr_t a = (uintptr_t)si->si_addr;
    const char *what = nullptr;
    if (si->si_code <= 0) {
        raise(sig); /* sent by kill(): delivered (default action) once we return */
        return;
    }
    if (region && a >= (uintptr_t)region && a < (uintptr_t)region + region_size)
        what = open_len ? "device memory beyond every allocation was touched at "
                        : "host code dereferenced a device pointer (CUDA emulator device memory) at ";
    else if (dyn_lo && a >= (uintptr_t)dyn_lo + MAX_DYN_SHARED && a < (uintptr_t)dyn_lo + MAX_DYN_SHARED + page_size)
        what = "a kernel went past its dynamic shared memory at ";
    else if (coro_guard_hit(a))
        what = "an emulated GPU thread overflowed its stack at ";
    if (what) {
        put_str("nb_emu: ");
        put_str(what);
        put_hex(a);
        put_str("\n");
    }
}

static void install_segv_handler() {
    struct sigaction old;
    if (sigaction(SIGSEGV, nullptr, &old) || (old.sa_flags & SA_SIGINFO) || old.sa_handler != SIG_DFL)
        return; /* someone (a sanitizer, the program) handles it: leave theirs */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO | SA_RESETHAND | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, nullptr);
}

/* Under dev_lock. */
static bool region_init() {
    if (region) return true;
    page_size = (size_t)sysconf(_SC_PAGESIZE);
    size_t size = env_mem_bytes();
    void *p = mmap(nullptr, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) return false;
    region = (unsigned char *)p;
    region_size = size;
    free_blocks[0] = size;
    install_segv_handler();
    return true;
}

/* The bytes from region's start that hold every allocation, in pages. */
static size_t used_extent() {
    if (used_blocks.empty()) return 0;
    auto last = std::prev(used_blocks.end());
    return (last->first + last->second.len + page_size - 1) / page_size * page_size;
}

/* Device memory readable and writable for the scope (under dev_lock). One
 * mprotect call each way over the used extent: freed holes in it stay open
 * too, a price for not toggling every block. */
struct dev_open {
    dev_open() {
        size_t n = used_extent();
        if (n && mprotect(region, n, PROT_READ | PROT_WRITE)) die("mprotect failed opening device memory");
        open_len = n;
    }
    ~dev_open() {
        if (open_len && mprotect(region, open_len, PROT_NONE)) die("mprotect failed closing device memory");
        open_len = 0;
    }
};

/* First fit over the free blocks, in address order. */
static bool dev_alloc(size_t bytes, size_t *off) {
    if (bytes > region_size) return false;
    size_t need = (bytes + DEV_ALIGN - 1) / DEV_ALIGN * DEV_ALIGN;
    for (auto it = free_blocks.begin(); it != free_blocks.end(); ++it) {
        if (it->second < need) continue;
        size_t o = it->first, len = it->second;
        free_blocks.erase(it);
        if (len > need) free_blocks[o + need] = len - need;
        used_blocks[o] = used_block{need, bytes};
        used_bytes += need;
        *off = o;
        return true;
    }
    return false;
}

static bool dev_free(size_t off) {
    auto u = used_blocks.find(off);
    if (u == used_blocks.end()) return false;
    size_t len = u->second.len;
    used_blocks.erase(u);
    used_bytes -= len;
    auto nx = free_blocks.lower_bound(off);
    if (nx != free_blocks.end() && nx->first == off + len) {
        len += nx->second;
        nx = free_blocks.erase(nx);
    }
    if (nx != free_blocks.begin()) {
        auto pv = std::prev(nx);
        if (pv->first + pv->second == off) {
            pv->second += len;
            return true;
        }
    }
    free_blocks.emplace_hint(nx, off, len);
    return true;
}

static bool in_region(const void *p) {
    return region && (uintptr_t)p >= (uintptr_t)region && (uintptr_t)p < (uintptr_t)region + region_size;
}

/* [p, p + bytes) lies inside one allocation (p may point into its middle),
 * as asked for: the alignment padding after it does not count. */
static bool dev_range(const void *p, size_t bytes) {
    if (!in_region(p)) return false;
    size_t off = (size_t)((uintptr_t)p - (uintptr_t)region);
    auto it = used_blocks.upper_bound(off);
    if (it == used_blocks.begin()) return false;
    --it;
    size_t end = it->first + it->second.asked;
    return off < end && bytes <= end - off;
}

bool nb_emu_device_ptr(const void *p) { return in_region(p); }

void nb_emu_bad_arg(const char *kernel, int index, const void *p) {
    fprintf(stderr, "nb_emu: %s: argument %d (%p) is not device memory: a GPU would fault reading it\n", kernel, index,
            p);
    abort();
}

/* A host-side buffer of a copy must not overlap device memory. */
static bool host_range(const void *p, size_t bytes) {
    if (!region) return true;
    uintptr_t a = (uintptr_t)p, lo = (uintptr_t)region, hi = lo + region_size;
    return a >= hi || a + bytes <= lo;
}

/* --- coroutines --------------------------------------------------------------- */

/* On x86-64 a switch is six pushes, a stack swap and six pops; elsewhere
 * makecontext builds the stacks and _setjmp/_longjmp switch them. Either
 * way no system call (swapcontext makes one per switch to save the signal
 * mask, which would dominate a barrier). The FP control words are not
 * switched: kernels do not change them. */
#if defined(__x86_64__) && !defined(NB_EMU_UCONTEXT)
#define NB_EMU_ASM_SWITCH 1
extern "C" void nb_emu_swap_(void **save_sp, void *sp) __attribute__((visibility("hidden")));
asm(".pushsection .text\n"
    ".globl nb_emu_swap_\n"
    ".hidden nb_emu_swap_\n"
    ".type nb_emu_swap_, @function\n"
    "nb_emu_swap_:\n"
    "    pushq %rbp\n    pushq %rbx\n    pushq %r12\n    pushq %r13\n    pushq %r14\n    pushq %r15\n"
    "    movq %rsp, (%rdi)\n"
    "    movq %rsi, %rsp\n"
    "    popq %r15\n    popq %r14\n    popq %r13\n    popq %r12\n    popq %rbx\n    popq %rbp\n"
    "    ret\n"
    ".size nb_emu_swap_, .-nb_emu_swap_\n"
    ".popsection\n");
#endif

struct coro {
#ifdef NB_EMU_ASM_SWITCH
    void *sp; /* saved stack pointer, callee-saved registers pushed below it */
#else
    jmp_buf jb;
    ucontext_t uc;
    bool primed; /* jb holds a live context; else enter through uc */
#endif
    unsigned char *lo; /* usable stack [lo, lo + size), a guard page below */
    size_t size;
    bool busy; /* holds a thread (or is running one) */
#ifdef NB_EMU_ASAN
    void *fake;
#endif
};

static coro sched_co; /* the launching host thread's own stack */
static coro *free_coros[MAX_THREADS];
static int nfree;
#ifdef NB_EMU_ASAN
static coro *switched_from; /* tells a resumed context whether the scheduler's stack bounds are what it left */
#endif

static bool coro_guard_hit(uintptr_t a) {
    for (int i = 0; i < npool; i++)
        if (in_guard(a, pool[i]->lo)) return true;
    return false;
}

static void __attribute__((noinline)) switch_co(coro *from, coro *to) {
    if (from == to) return;
#ifdef NB_EMU_ASAN
    __sanitizer_start_switch_fiber(&from->fake, to->lo, to->size);
    switched_from = from;
#endif
#ifdef NB_EMU_ASM_SWITCH
    nb_emu_swap_(&from->sp, to->sp);
#else
    /* noinline: the context _setjmp saves is this small frame. */
    if (!_setjmp(from->jb)) {
        if (to->primed) _longjmp(to->jb, 1);
        to->primed = true;
        setcontext(&to->uc); /* first entry runs co_main on the fresh stack */
        die("setcontext failed");
    }
#endif
#ifdef NB_EMU_ASAN
    const void *lo;
    size_t size;
    __sanitizer_finish_switch_fiber(from->fake, &lo, &size);
    if (switched_from == &sched_co) {
        sched_co.lo = (unsigned char *)lo;
        sched_co.size = size;
    }
#endif
}

static void co_main();

/* Makes c start co_main afresh at its next entry. */
static void coro_reset(coro *c) {
#ifdef NB_EMU_ASM_SWITCH
    /* What nb_emu_swap_ pops: six registers, then co_main as the return
     * address, above it a null one for co_main itself (it never returns),
     * which leaves the stack aligned as after a call. */
    void **sp = (void **)(((uintptr_t)c->lo + c->size) & ~(uintptr_t)15);
    *--sp = nullptr;
    *--sp = (void *)co_main;
    for (int i = 0; i < 6; i++) *--sp = nullptr;
    c->sp = sp;
#else
    if (getcontext(&c->uc)) die("getcontext failed");
    c->uc.uc_stack.ss_sp = c->lo;
    c->uc.uc_stack.ss_size = c->size;
    c->uc.uc_link = nullptr; /* co_main never returns */
    makecontext(&c->uc, co_main, 0);
    c->primed = false;
#endif
    c->busy = false;
#ifdef NB_EMU_ASAN
    c->fake = nullptr;
    __asan_unpoison_memory_region(c->lo, c->size); /* frames abandoned mid-kernel leave redzones */
#endif
}

/* A free coroutine, or a new one while fewer than MAX_THREADS exist (the
 * most a block can have parked at once). Stacks are kept for later launches. */
static coro *coro_get() {
    if (nfree) return free_coros[--nfree];
    if (npool == MAX_THREADS) return nullptr;
    size_t total = STACK_SIZE + page_size;
    void *m = mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1,
                   0);
    if (m == MAP_FAILED) return nullptr;
    mprotect(m, page_size, PROT_NONE);
    coro *c = new coro();
    c->lo = (unsigned char *)m + page_size;
    c->size = STACK_SIZE;
    coro_reset(c);
    pool[npool++] = c;
    return c;
}

/* --- the scheduler ------------------------------------------------------------ */

enum { T_RUN, T_BAR, T_WARP, T_DONE };

struct thr {
    nb_emu_thread pub;
    coro *co;  /* the coroutine running it */
    int state;
    /* a pending warp op */
    int op, arg, width;
    unsigned mask;
    uint64_t val, res;
};

static struct {
    bool active;
    const char *name;
    void (*call)(void *);
    void *body;
    nb_emu_block blk;
    unsigned n;       /* threads per block */
    unsigned next;    /* the next thread never started */
    unsigned done;    /* threads returned */
    unsigned at_bar;  /* threads waiting at __syncthreads */
    unsigned rq[MAX_THREADS], rq_head, rq_tail; /* threads ready to resume; each at most once */
    unsigned warp_arrived[MAX_THREADS / 32];    /* lanes waiting at a warp op, per warp */
    unsigned cur;     /* the running thread */
    coro *cur_co;     /* the coroutine being entered */
    bool failed;
    char why[256];
    thr t[MAX_THREADS];
} S;

static void rq_push(unsigned t) { S.rq[S.rq_tail++ % MAX_THREADS] = t; }

/* What runs next: a thread released from a barrier, else a thread never
 * started (on a free coroutine), else the scheduler: the block is over, or
 * stuck. Threads switch to it directly, without a detour by the scheduler. */
static coro *pick() {
    if (S.rq_head != S.rq_tail) {
        unsigned t = S.rq[S.rq_head++ % MAX_THREADS];
        thr &r = S.t[t];
        r.state = T_RUN;
        S.cur = t;
        nb_emu_cur_ = &r.pub;
        return r.co;
    }
    if (S.next < S.n && !S.failed) {
        coro *c = coro_get();
        if (c) {
            c->busy = true;
            S.cur_co = c;
            return c;
        }
        snprintf(S.why, sizeof S.why, "no memory for a thread's stack");
        S.failed = true;
    }
    return &sched_co;
}

/* NB_EMU_ORDER=reverse runs the blocks of a launch, the threads of a block
 * and the threads released by a barrier or a warp operation in the reverse
 * of the usual order. A kernel with a race (a thread reading what another
 * writes between the same two barriers, or a block reading another block's
 * output) gives different results in the two orders, so `make cuda-emu`
 * runs the tests both ways: the emulator cannot show races itself. */
static bool reverse; /* read at each launch */
/* The k-th of n in the run order. */
static unsigned in_order(unsigned k, unsigned n) { return reverse ? n - 1 - k : k; }

/* Each coroutine starts threads until none is left; a thread parked at a
 * barrier keeps its coroutine, and the next thread starts on another. */
static void co_main() {
    coro *self = S.cur_co;
#ifdef NB_EMU_ASAN
    const void *lo;
    size_t size;
    __sanitizer_finish_switch_fiber(nullptr, &lo, &size);
    if (switched_from == &sched_co) {
        sched_co.lo = (unsigned char *)lo;
        sched_co.size = size;
    }
#endif
    for (;;) {
        while (S.next < S.n) {
            unsigned t = in_order(S.next++, S.n);
            thr &r = S.t[t];
            r.co = self;
            r.state = T_RUN;
            S.cur = t;
            nb_emu_cur_ = &r.pub;
            S.call(S.body);
            r.state = T_DONE;
            S.done++;
        }
        self->busy = false;
        free_coros[nfree++] = self;
        switch_co(self, pick());
    }
}

/* Ends the launch from inside a thread: the thread is never resumed. */
static void thread_fail(const char *why) {
    if (!S.failed) snprintf(S.why, sizeof S.why, "%s", why);
    S.failed = true;
    switch_co(S.t[S.cur].co, &sched_co);
    die("a failed thread was resumed");
}

void __syncthreads() {
    if (!S.active) die("__syncthreads called outside a kernel");
    thr &r = S.t[S.cur];
    r.state = T_BAR;
    if (++S.at_bar == S.n) { /* the last one in: everybody goes on, in thread order */
        S.at_bar = 0;
        for (unsigned i = 0; i < S.n; i++) rq_push(in_order(i, S.n));
    }
    switch_co(r.co, pick());
}

uint64_t nb_emu_warp_op(int op, unsigned mask, uint64_t bits, int arg, int width) {
    if (!S.active) die("a warp intrinsic called outside a kernel");
    char why[160];
    unsigned t = S.cur, lane = t % 32, w = t / 32, base = w * 32;
    unsigned lanes = S.n - base < 32 ? S.n - base : 32; /* lanes this warp has */
    if (!(mask >> lane & 1)) {
        snprintf(why, sizeof why, "thread %u calls a warp intrinsic with a mask (0x%08x) without its own lane", t, mask);
        thread_fail(why);
    }
    if (lanes < 32 && mask >> lanes) {
        snprintf(why, sizeof why, "warp %u has %u lanes but a mask names 0x%08x", w, lanes, mask);
        thread_fail(why);
    }
    if (width < 1 || width > 32 || (width & (width - 1))) {
        snprintf(why, sizeof why, "shuffle width %d is not a power of two up to 32", width);
        thread_fail(why);
    }
    thr &r = S.t[t];
    r.state = T_WARP;
    r.op = op;
    r.mask = mask;
    r.val = bits;
    r.arg = arg;
    r.width = width;
    S.warp_arrived[w] |= 1u << lane;
    if ((S.warp_arrived[w] & mask) == mask) { /* every lane of the mask is here */
        uint64_t ballot = 0;
        for (unsigned l = 0; l < 32; l++) {
            if (!(mask >> l & 1)) continue;
            const thr &o = S.t[base + l];
            if (o.mask != mask || o.op != op) {
                snprintf(why, sizeof why, "lanes %u and %u of warp %u disagree at a warp intrinsic", lane, l, w);
                thread_fail(why);
            }
            ballot |= (uint64_t)(o.val != 0) << l;
        }
        for (unsigned l = 0; l < 32; l++) {
            if (!(mask >> l & 1)) continue;
            thr &o = S.t[base + l];
            unsigned seg = l & ~(unsigned)(o.width - 1), w1 = (unsigned)o.width - 1, src = l;
            switch (o.op) {
            case NB_EMU_W_SHFL: src = seg + ((unsigned)o.arg & w1); break;
            case NB_EMU_W_UP: src = (l & w1) >= (unsigned)o.arg ? l - (unsigned)o.arg : l; break;
            case NB_EMU_W_DOWN: src = (l & w1) + (unsigned)o.arg <= w1 ? l + (unsigned)o.arg : l; break;
            case NB_EMU_W_XOR: src = l ^ (unsigned)o.arg; src = src < seg + (unsigned)o.width ? src : l; break;
            default: break;
            }
            if (!(mask >> src & 1)) {
                snprintf(why, sizeof why, "lane %u of warp %u shuffles from lane %u, outside the mask 0x%08x", l, w, src,
                         mask);
                thread_fail(why);
            }
            o.res = o.op == NB_EMU_W_BALLOT ? ballot : S.t[base + src].val;
        }
        S.warp_arrived[w] &= ~mask;
        for (unsigned k = 0; k < 32; k++) {
            unsigned l = in_order(k, 32);
            if (mask >> l & 1) rq_push(base + l);
        }
    }
    switch_co(r.co, pick());
    return r.res;
}

/* The static __shared__ arrays of every kernel (emu.h), bounds from the linker;
 * weak, for a program with none. */
extern "C" char __start_nb_emu_shared[] __attribute__((weak)), __stop_nb_emu_shared[] __attribute__((weak));

/* Runs the current block; false (S.why says why) when it cannot finish. */
static bool run_block() {
    uintptr_t lo = (uintptr_t)__start_nb_emu_shared, hi = (uintptr_t)__stop_nb_emu_shared;
    if (lo && hi > lo) memset(__start_nb_emu_shared, 0xff, hi - lo); /* about 13 KB: 2% of a 256-thread block's time */
    S.next = S.done = S.at_bar = 0;
    S.rq_head = S.rq_tail = 0;
    memset(S.warp_arrived, 0, sizeof S.warp_arrived);
    for (coro *c; !S.failed && (c = pick()) != &sched_co;) switch_co(&sched_co, c);
    if (!S.failed && S.done != S.n) {
        unsigned warp = 0;
        for (unsigned i = 0; i < S.n; i++) warp += S.t[i].state == T_WARP;
        snprintf(S.why, sizeof S.why,
                 "divergent barrier: of %u threads, %u returned, %u wait at __syncthreads, %u at a warp intrinsic", S.n,
                 S.done, S.at_bar, warp);
        S.failed = true;
    }
    return !S.failed;
}

/* What CUDA answers for the configuration, before anything runs. */
static cudaError_t check_config(dim3 g, dim3 b, size_t shmem) {
    if (!b.x || !b.y || !b.z || !g.x || !g.y || !g.z) return cudaErrorInvalidConfiguration;
    if (b.x > 1024 || b.y > 1024 || b.z > 64 || (uint64_t)b.x * b.y * b.z > MAX_THREADS)
        return cudaErrorInvalidConfiguration;
    if (g.x > 2147483647u || g.y > 65535 || g.z > 65535) return cudaErrorInvalidConfiguration;
    if (shmem > MAX_DYN_SHARED) return cudaErrorInvalidValue;
    return cudaSuccess;
}

/* An alternate signal stack, so that the SIGSEGV handler can still name a
 * thread's stack overflow (it cannot run on the overflowed stack). */
static void ensure_altstack() {
    static thread_local bool done;
    if (done) return;
    done = true;
    stack_t old;
    if (sigaltstack(nullptr, &old) || !(old.ss_flags & SS_DISABLE)) return;
    stack_t ss;
    ss.ss_size = 64 * 1024;
    ss.ss_sp = malloc(ss.ss_size);
    ss.ss_flags = 0;
    if (ss.ss_sp) sigaltstack(&ss, nullptr);
}

void nb_emu_launch_(const char *name, dim3 grid, dim3 block, size_t shmem, void (*call)(void *), void *body) {
    if (forked()) {
        fail(cudaErrorInitializationError);
        return;
    }
    cudaError_t e = check_config(grid, block, shmem);
    if (e != cudaSuccess) {
        fail(e);
        return;
    }
    dev_lock lk;
    const char *order = getenv("NB_EMU_ORDER");
    reverse = order && !strcmp(order, "reverse");
    if (!page_size) page_size = (size_t)sysconf(_SC_PAGESIZE);
    ensure_altstack();
    if (!dyn_lo) {
        void *m = mmap(nullptr, MAX_DYN_SHARED + page_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED) die("no memory for shared memory");
        mprotect((unsigned char *)m + MAX_DYN_SHARED, page_size, PROT_NONE);
        dyn_lo = (unsigned char *)m;
    }
    /* The buffer ends at the guard page, so an overrun faults. */
    dyn_bytes = (shmem + 15) / 16 * 16;
    dyn_ptr = dyn_lo + MAX_DYN_SHARED - dyn_bytes;
    dev_open open;

#ifndef NB_EMU_ASM_SWITCH
    sched_co.primed = true; /* its jb is saved by every switch into a thread */
#endif
    S.name = name;
    S.call = call;
    S.body = body;
    S.n = block.x * block.y * block.z;
    S.failed = false;
    for (unsigned t = 0; t < S.n; t++) S.t[t].pub.tid = uint3{t % block.x, t / block.x % block.y, t / (block.x * block.y)};
    S.blk.bdim = block;
    S.blk.gdim = grid;
    nb_emu_blk_ = &S.blk;
    S.active = true;
    for (unsigned z = 0; z < grid.z && !S.failed; z++)
        for (unsigned y = 0; y < grid.y && !S.failed; y++)
            for (unsigned x = 0; x < grid.x; x++) {
                S.blk.bid = uint3{in_order(x, grid.x), in_order(y, grid.y), in_order(z, grid.z)};
                memset(dyn_ptr, 0xff, dyn_bytes);
                if (!run_block()) break;
            }
    S.active = false;
    nb_emu_cur_ = nullptr;
    nb_emu_blk_ = nullptr;
    if (S.failed) {
        /* Parked threads are abandoned: their coroutines start afresh. */
        nfree = 0;
        for (int i = 0; i < npool; i++) {
            if (pool[i]->busy) coro_reset(pool[i]);
            free_coros[nfree++] = pool[i];
        }
        fprintf(stderr, "nb_emu: kernel %s, block (%u,%u,%u) of (%u,%u,%u), %u threads: %s\n", name, S.blk.bid.x,
                S.blk.bid.y, S.blk.bid.z, grid.x, grid.y, grid.z, S.n, S.why);
        fail(cudaErrorLaunchFailure);
    }
}

void *nb_emu_dyn_shared() {
    if (!S.active) die("dynamic shared memory asked for outside a kernel");
    return dyn_ptr;
}

/* --- the runtime API --------------------------------------------------------- */

const char *cudaGetErrorName(cudaError_t e) {
    switch (e) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInitializationError: return "cudaErrorInitializationError";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidDevicePointer: return "cudaErrorInvalidDevicePointer";
    case cudaErrorInvalidMemcpyDirection: return "cudaErrorInvalidMemcpyDirection";
    case cudaErrorNoDevice: return "cudaErrorNoDevice";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
    case cudaErrorNotSupported: return "cudaErrorNotSupported";
    }
    return "cudaErrorUnknown";
}

const char *cudaGetErrorString(cudaError_t e) {
    switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInitializationError: return "initialization error";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidDevicePointer: return "invalid device pointer";
    case cudaErrorInvalidMemcpyDirection: return "invalid copy direction for memcpy";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
    case cudaErrorNotSupported: return "operation not supported";
    }
    return "unrecognized error code";
}

cudaError_t cudaGetLastError(void) {
    cudaError_t e = last_error;
    last_error = cudaSuccess;
    return e;
}

cudaError_t cudaPeekAtLastError(void) { return last_error; }

static bool no_device() { return getenv("NB_EMU_NO_DEVICE") != nullptr; }

cudaError_t cudaGetDeviceCount(int *count) {
    NOT_AFTER_FORK();
    if (!count) return fail(cudaErrorInvalidValue);
    *count = no_device() ? 0 : 1;
    return *count ? cudaSuccess : fail(cudaErrorNoDevice);
}

cudaError_t cudaSetDevice(int dev) {
    NOT_AFTER_FORK();
    if (no_device()) return fail(cudaErrorNoDevice);
    return dev == 0 ? cudaSuccess : fail(cudaErrorInvalidDevice);
}

cudaError_t cudaGetDevice(int *dev) {
    NOT_AFTER_FORK();
    if (!dev) return fail(cudaErrorInvalidValue);
    *dev = 0;
    return cudaSuccess;
}

/* An Ampere-class device (the oldest the backend compiles for) with the
 * emulated memory. */
cudaError_t cudaGetDeviceProperties(cudaDeviceProp *p, int dev) {
    NOT_AFTER_FORK();
    if (!p) return fail(cudaErrorInvalidValue);
    if (no_device()) return fail(cudaErrorNoDevice);
    if (dev != 0) return fail(cudaErrorInvalidDevice);
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "nabla CUDA emulator");
    p->totalGlobalMem = region ? region_size : env_mem_bytes();
    p->sharedMemPerBlock = MAX_DYN_SHARED;
    p->warpSize = 32;
    p->maxThreadsPerBlock = MAX_THREADS;
    p->maxThreadsDim[0] = 1024;
    p->maxThreadsDim[1] = 1024;
    p->maxThreadsDim[2] = 64;
    p->maxGridSize[0] = 2147483647;
    p->maxGridSize[1] = 65535;
    p->maxGridSize[2] = 65535;
    p->major = 8;
    p->minor = 0;
    p->multiProcessorCount = 1;
    return cudaSuccess;
}

cudaError_t cudaDriverGetVersion(int *v) {
    if (!v) return fail(cudaErrorInvalidValue);
    *v = 13000;
    return cudaSuccess;
}

cudaError_t cudaRuntimeGetVersion(int *v) { return cudaDriverGetVersion(v); }

/* Size 0 gives NULL and success, as CUDA does. New memory is 0xff bytes
 * (NaN), so a kernel that reads what it never wrote shows it. */
cudaError_t cudaMalloc(void **p, size_t bytes) {
    NOT_AFTER_FORK();
    if (!p) return fail(cudaErrorInvalidValue);
    *p = nullptr;
    if (!bytes) return cudaSuccess;
    dev_lock lk;
    size_t off;
    if (!region_init() || !dev_alloc(bytes, &off)) return fail(cudaErrorMemoryAllocation);
    dev_open open;
    memset(region + off, 0xff, bytes);
    *p = region + off;
    return cudaSuccess;
}

cudaError_t cudaFree(void *p) {
    NOT_AFTER_FORK();
    if (!p) return cudaSuccess;
    dev_lock lk;
    if (!in_region(p) || !dev_free((size_t)((unsigned char *)p - region))) return fail(cudaErrorInvalidValue);
    return cudaSuccess;
}

cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total_bytes) {
    NOT_AFTER_FORK();
    if (!free_bytes || !total_bytes) return fail(cudaErrorInvalidValue);
    dev_lock lk;
    size_t total = region ? region_size : env_mem_bytes();
    *free_bytes = total - used_bytes;
    *total_bytes = total;
    return cudaSuccess;
}

/* Each side must be what kind says: device memory inside one allocation, or
 * host memory outside the device region (a host pointer passed as a device
 * one, or the reverse, is the bug this catches). */
cudaError_t cudaMemcpy(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind) {
    NOT_AFTER_FORK();
    if ((unsigned)kind > (unsigned)cudaMemcpyDefault) return fail(cudaErrorInvalidMemcpyDirection);
    if (!bytes) return cudaSuccess;
    if (!dst || !src) return fail(cudaErrorInvalidValue);
    dev_lock lk;
    bool dd = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
    bool sd = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
    if (kind == cudaMemcpyDefault) {
        dd = in_region(dst);
        sd = in_region(src);
    }
    if (!(dd ? dev_range(dst, bytes) : host_range(dst, bytes)) || !(sd ? dev_range(src, bytes) : host_range(src, bytes)))
        return fail(cudaErrorInvalidValue);
    dev_open open;
    memmove(dst, src, bytes);
    return cudaSuccess;
}

cudaError_t cudaMemset(void *p, int value, size_t bytes) {
    NOT_AFTER_FORK();
    if (!bytes) return cudaSuccess;
    dev_lock lk;
    if (!dev_range(p, bytes)) return fail(cudaErrorInvalidValue);
    dev_open open;
    memset(p, value, bytes);
    return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind, cudaStream_t) {
    return cudaMemcpy(dst, src, bytes, kind);
}

cudaError_t cudaMemsetAsync(void *p, int value, size_t bytes, cudaStream_t) { return cudaMemset(p, value, bytes); }

cudaError_t cudaDeviceSynchronize(void) {
    NOT_AFTER_FORK();
    return cudaSuccess;
}

/* A stream is a token: everything already ran when its call returned. */
cudaError_t cudaStreamCreate(cudaStream_t *s) {
    NOT_AFTER_FORK();
    if (!s) return fail(cudaErrorInvalidValue);
    *s = (cudaStream_t)malloc(1);
    return *s ? cudaSuccess : fail(cudaErrorMemoryAllocation);
}

cudaError_t cudaStreamDestroy(cudaStream_t s) {
    NOT_AFTER_FORK();
    free(s);
    return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t) {
    NOT_AFTER_FORK();
    return cudaSuccess;
}

/* --- cuBLAS --------------------------------------------------------------------- */

struct cublasContext {
    cudaStream_t stream;
    cublasMath_t math;
};

cublasStatus_t cublasCreate(cublasHandle_t *h) {
    CUBLAS_NOT_AFTER_FORK();
    if (!h) return CUBLAS_STATUS_INVALID_VALUE;
    *h = new cublasContext{nullptr, CUBLAS_DEFAULT_MATH};
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasDestroy(cublasHandle_t h) {
    CUBLAS_NOT_AFTER_FORK();
    if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
    delete h;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetStream(cublasHandle_t h, cudaStream_t s) {
    if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
    h->stream = s;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGetStream(cublasHandle_t h, cudaStream_t *s) {
    if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (!s) return CUBLAS_STATUS_INVALID_VALUE;
    *s = h->stream;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetMathMode(cublasHandle_t h, cublasMath_t mode) {
    if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
    h->math = mode;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGetMathMode(cublasHandle_t h, cublasMath_t *mode) {
    if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (!mode) return CUBLAS_STATUS_INVALID_VALUE;
    *mode = h->math;
    return CUBLAS_STATUS_SUCCESS;
}

const char *cublasGetStatusName(cublasStatus_t s) {
    switch (s) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    }
    return "CUBLAS_STATUS_UNKNOWN";
}

const char *cublasGetStatusString(cublasStatus_t s) {
    switch (s) {
    case CUBLAS_STATUS_SUCCESS: return "success";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "the library was not initialized";
    case CUBLAS_STATUS_ALLOC_FAILED: return "the resource allocation failed";
    case CUBLAS_STATUS_INVALID_VALUE: return "an invalid numeric value was used as an argument";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "the GPU program failed to execute";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "an internal operation failed";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "the functionality requested is not supported";
    }
    return "unknown error";
}

/* A column-major rows x cols matrix with leading dimension ld at p + i *
 * stride (floats) for every i < batch lies in device memory. */
static bool dev_matrix(const float *p, int rows, int cols, int ld, long long stride, int batch) {
    if (!rows || !cols) return true;
    size_t bytes = ((size_t)(cols - 1) * (size_t)ld + (size_t)rows) * sizeof(float);
    for (int i = 0; i < batch; i++)
        if (!dev_range((const void *)((uintptr_t)p + (uintptr_t)((long long)i * stride * (long long)sizeof(float))),
                       bytes))
            return false;
    return true;
}

static void gemm_one(bool ta, bool tb, int m, int n, int k, float alpha, const float *A, int lda, const float *B,
                     int ldb, float beta, float *C, int ldc) {
    /* cuBLAS never reads C when beta == 0 (NaN there must not leak); some
     * BLAS kernels multiply by it instead, so C is cleared first. */
    if (beta == 0.0f)
        for (int j = 0; j < n; j++) memset(C + (size_t)j * ldc, 0, (size_t)m * sizeof(float));
    if (k == 0 || alpha == 0.0f) { /* A and B unread, as in BLAS */
        if (beta != 0.0f && beta != 1.0f)
            for (int j = 0; j < n; j++)
                for (int i = 0; i < m; i++) C[(size_t)j * ldc + i] *= beta;
        return;
    }
    cblas_sgemm(CblasColMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n, k, alpha, A, lda,
                B, ldb, beta, C, ldc);
}

static cublasStatus_t gemm(const char *fn, cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                           int k, const float *alpha, const float *A, int lda, long long sa, const float *B, int ldb,
                           long long sb, const float *beta, float *C, int ldc, long long sc, int batch) {
    CUBLAS_NOT_AFTER_FORK();
    if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
    bool tra = ta != CUBLAS_OP_N, trb = tb != CUBLAS_OP_N;
    auto op_ok = [](cublasOperation_t o) { return o == CUBLAS_OP_N || o == CUBLAS_OP_T || o == CUBLAS_OP_C; };
    int a_rows = tra ? k : m, b_rows = trb ? n : k;
    if (m < 0 || n < 0 || k < 0 || batch < 0 || !op_ok(ta) || !op_ok(tb) || lda < (a_rows > 1 ? a_rows : 1) ||
        ldb < (b_rows > 1 ? b_rows : 1) || ldc < (m > 1 ? m : 1) || !alpha || !beta)
        return CUBLAS_STATUS_INVALID_VALUE;
    if (!m || !n || !batch) return CUBLAS_STATUS_SUCCESS;
    dev_lock lk;
    bool reads_ab = k && *alpha != 0.0f;
    const char *bad = nullptr;
    if (reads_ab && !dev_matrix(A, a_rows, tra ? m : k, lda, sa, batch)) bad = "A";
    else if (reads_ab && !dev_matrix(B, b_rows, trb ? k : n, ldb, sb, batch)) bad = "B";
    else if (!dev_matrix(C, m, n, ldc, sc, batch)) bad = "C";
    if (bad) {
        fprintf(stderr, "nb_emu: %s: %s is not inside allocated device memory\n", fn, bad);
        return CUBLAS_STATUS_EXECUTION_FAILED;
    }
    dev_open open;
    for (int i = 0; i < batch; i++)
        gemm_one(tra, trb, m, n, k, *alpha, A + (long long)i * sa, lda, B + (long long)i * sb, ldb, *beta,
                 C + (long long)i * sc, ldc);
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSgemm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                           const float *alpha, const float *A, int lda, const float *B, int ldb, const float *beta,
                           float *C, int ldc) {
    return gemm("cublasSgemm", h, ta, tb, m, n, k, alpha, A, lda, 0, B, ldb, 0, beta, C, ldc, 0, 1);
}

cublasStatus_t cublasSgemmStridedBatched(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                                         int k, const float *alpha, const float *A, int lda, long long stride_a,
                                         const float *B, int ldb, long long stride_b, const float *beta, float *C,
                                         int ldc, long long stride_c, int batch) {
    return gemm("cublasSgemmStridedBatched", h, ta, tb, m, n, k, alpha, A, lda, stride_a, B, ldb, stride_b, beta, C,
                ldc, stride_c, batch);
}
