/* arena.c — the step arena: every tensor and tape node of a training step is
 * carved from a few big blocks by bumping a pointer, and nb_arena_reset()
 * gives them all back at once. After a reset that needed several blocks, the
 * blocks are merged into one of the total size, so a steady training loop
 * settles on a single block and never calls malloc again. */
#include "internal.h"
#include <stdlib.h>

#define ALIGN 64
#define MIN_BLOCK ((size_t)1 << 20)

typedef struct block {
    struct block *next;
    size_t cap, used;
    unsigned char *mem;
} block;

struct nb_arena {
    block *head, *cur;
    size_t used_total; /* bytes handed out since reset */
    nb_node *tape;     /* newest node of the tape recorded in this arena */
};

static nb_arena default_arena;
static _Thread_local nb_arena *current = &default_arena;

static block *block_new(size_t cap) {
    block *b = malloc(sizeof *b);
    if (!b) nb__oom("the step arena", sizeof *b);
    b->mem = aligned_alloc(ALIGN, (cap + ALIGN - 1) / ALIGN * ALIGN);
    if (!b->mem) {
        free(b);
        nb__oom("the step arena", cap);
    }
    b->next = NULL;
    b->cap = cap;
    b->used = 0;
    return b;
}

nb_arena *nb_arena_new(void) {
    nb_arena *a = calloc(1, sizeof *a);
    if (!a) nb__oom("a step arena", sizeof *a);
    return a;
}

static void free_blocks(nb_arena *a) {
    for (block *b = a->head, *n; b; b = n) {
        n = b->next;
        free(b->mem);
        free(b);
    }
    a->head = a->cur = NULL;
}

void nb_arena_free(nb_arena *a) {
    if (!a) return;
    if (current == a) current = &default_arena;
    free_blocks(a);
    if (a != &default_arena) free(a);
}

nb_arena *nb_arena_use(nb_arena *a) {
    nb_arena *old = current;
    current = a ? a : &default_arena;
    return old;
}

nb_arena *nb_arena_current(void) { return current; }

void *nb_arena_alloc(size_t bytes) {
    nb_arena *a = current;
    bytes = (bytes + ALIGN - 1) / ALIGN * ALIGN;
    if (bytes == 0) bytes = ALIGN;
    for (;;) {
        block *b = a->cur;
        if (b && b->cap - b->used >= bytes) {
            void *p = b->mem + b->used;
            b->used += bytes;
            a->used_total += bytes;
            return p;
        }
        if (b && b->next) { /* a block kept from an earlier step */
            a->cur = b->next;
            a->cur->used = 0;
            continue;
        }
        /* Blocks grow by a quarter: the first step of a loop reserves at
         * most about 25% more than it uses (doubling could reserve 2x). */
        size_t cap = MIN_BLOCK;
        if (b && b->cap + b->cap / 4 > cap) cap = b->cap + b->cap / 4;
        if (bytes > cap) cap = bytes;
        block *nb = block_new(cap);
        if (b) b->next = nb; else a->head = nb;
        a->cur = nb;
    }
}

void nb_arena_reset(void) {
    nb_arena *a = current;
    if (a->head && a->head->next) {
        /* Several blocks were needed: replace them by one that fits what the
         * step used (plus an eighth), not the sum of the doubling blocks,
         * which can be twice that. */
        size_t need = a->used_total + a->used_total / 8;
        free_blocks(a);
        a->head = a->cur = block_new(need > MIN_BLOCK ? need : MIN_BLOCK);
    }
    if (a->head) a->head->used = 0;
    a->cur = a->head;
    a->used_total = 0;
    a->tape = NULL;
}

nb_node **nb__tape(void) { return &current->tape; }

size_t nb_arena_bytes_used(void) { return current->used_total; }

size_t nb_arena_bytes_reserved(void) {
    size_t total = 0;
    for (block *b = current->head; b; b = b->next) total += b->cap;
    return total;
}
