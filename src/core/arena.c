/* arena.c — the step arena: every tensor and tape node of a training step is
 * carved from a few big blocks by bumping a pointer, and nb_arena_reset()
 * gives them all back at once. After a reset that needed several blocks, the
 * blocks are merged into one of the total size, so a steady training loop
 * settles on a single block and never calls malloc again. GPU tensors of the
 * step come the same way from blocks of device memory (a second pool), so a
 * step on the GPU never calls cudaMalloc either once it has settled. */
#include "internal.h"
#include <pthread.h>
#include <stdlib.h>

#define ALIGN 64
#define MIN_BLOCK ((size_t)1 << 20)

typedef struct block {
    struct block *next;
    size_t cap, used;
    unsigned char *mem;
} block;

/* Blocks of one kind of memory: host (malloc) or device (nb__dev_alloc). */
typedef struct pool {
    block *head, *cur;
    size_t used_total; /* bytes handed out since reset */
    bool gpu;
} pool;

struct nb_arena {
    pool host, gpu;
    nb_node *tape; /* newest node of the tape recorded in this arena */
};

/* Each thread has a default arena of its own, so that threads that never
 * call nb_arena_use do not carve one arena at once; `current` NULL means the
 * thread's default (a thread-local cannot start out pointing at another). A
 * thread's default arena is freed when the thread ends (give_back), as
 * nothing else could reach it then. */
static _Thread_local nb_arena default_arena = {.gpu.gpu = true};
static _Thread_local nb_arena *current;
static pthread_key_t exit_key;
static pthread_once_t exit_once = PTHREAD_ONCE_INIT;

static inline nb_arena *cur(void) { return current ? current : &default_arena; }

static void give_back(void *a) { nb_arena_free(a); }
static void make_exit_key(void) {
    if (pthread_key_create(&exit_key, give_back)) nb_fatal("arena", "cannot register the thread-exit cleanup");
}
/* The first block of a thread's default arena: have the thread's end free it. */
static void note_default_block(const pool *p) {
    if (p != &default_arena.host && p != &default_arena.gpu) return;
    pthread_once(&exit_once, make_exit_key);
    if (!pthread_getspecific(exit_key)) pthread_setspecific(exit_key, &default_arena);
}

static block *block_new(size_t cap, bool gpu) {
    block *b = malloc(sizeof *b);
    if (!b) nb_oom("the step arena", sizeof *b);
    size_t bytes = (cap + ALIGN - 1) / ALIGN * ALIGN;
    b->mem = gpu ? nb__dev_alloc(bytes) : aligned_alloc(ALIGN, bytes);
    if (!b->mem) {
        free(b);
        nb_oom(gpu ? "the step arena on the GPU" : "the step arena", cap);
    }
    b->next = NULL;
    b->cap = cap;
    b->used = 0;
    return b;
}

nb_arena *nb_arena_new(void) {
    nb_arena *a = calloc(1, sizeof *a);
    if (!a) nb_oom("a step arena", sizeof *a);
    a->gpu.gpu = true;
    return a;
}

static void free_blocks(pool *p) {
    for (block *b = p->head, *n; b; b = n) {
        n = b->next;
        if (p->gpu) nb__dev_free(b->mem);
        else free(b->mem);
        free(b);
    }
    p->head = p->cur = NULL;
}

void nb_arena_free(nb_arena *a) {
    if (!a) return;
    if (current == a) current = NULL;
    free_blocks(&a->host);
    free_blocks(&a->gpu);
    if (a != &default_arena) free(a);
    else a->host.used_total = a->gpu.used_total = 0, a->tape = NULL; /* still in use: empty, not gone */
}

nb_arena *nb_arena_use(nb_arena *a) {
    nb_arena *old = cur();
    current = a;
    return old;
}

nb_arena *nb_arena_current(void) { return cur(); }

static void *pool_alloc(pool *p, size_t bytes) {
    /* A request within ALIGN of SIZE_MAX (an overflowed n * size) would round
     * up to a few bytes and be handed out as such: no memory holds it. */
    if (bytes > SIZE_MAX - ALIGN) nb_oom(p->gpu ? "the step arena on the GPU" : "the step arena", bytes);
    bytes = (bytes + ALIGN - 1) / ALIGN * ALIGN;
    if (bytes == 0) bytes = ALIGN;
    for (;;) {
        block *b = p->cur;
        if (b && b->cap - b->used >= bytes) {
            void *m = b->mem + b->used;
            b->used += bytes;
            p->used_total += bytes;
            return m;
        }
        if (b && b->next) { /* a block kept from an earlier step */
            p->cur = b->next;
            p->cur->used = 0;
            continue;
        }
        /* Blocks grow by a quarter: the first step of a loop reserves at
         * most about 25% more than it uses (doubling could reserve 2x). */
        size_t cap = MIN_BLOCK;
        if (b && b->cap + b->cap / 4 > cap) cap = b->cap + b->cap / 4;
        if (bytes > cap) cap = bytes;
        block *nb = block_new(cap, p->gpu);
        if (!p->head) note_default_block(p);
        if (b) b->next = nb; else p->head = nb;
        p->cur = nb;
    }
}

void *nb_arena_alloc(size_t bytes) { return pool_alloc(&cur()->host, bytes); }
void *nb__arena_alloc_gpu(size_t bytes) { return pool_alloc(&cur()->gpu, bytes); }

static void pool_reset(pool *p) {
    if (p->head && p->head->next) {
        /* Several blocks were needed: replace them by one that fits what the
         * step used (plus an eighth), not the sum of the doubling blocks,
         * which can be twice that. */
        size_t need = p->used_total + p->used_total / 8;
        free_blocks(p);
        p->head = p->cur = block_new(need > MIN_BLOCK ? need : MIN_BLOCK, p->gpu);
    }
    if (p->head) p->head->used = 0;
    p->cur = p->head;
    p->used_total = 0;
}

void nb_arena_reset(void) {
    nb_arena *a = cur();
    pool_reset(&a->host);
    pool_reset(&a->gpu);
    a->tape = NULL;
}

nb_node **nb__tape(void) { return &cur()->tape; }

size_t nb_arena_bytes_used(void) { return cur()->host.used_total; }

size_t nb_arena_bytes_reserved(void) {
    size_t total = 0;
    for (block *b = cur()->host.head; b; b = b->next) total += b->cap;
    return total;
}
