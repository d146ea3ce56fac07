/*
 * types.h - the data structures of the heap and their invariants.
 *
 * Included by alloc.h so that the fast paths can be inlined; the fields are
 * nonetheless private to alloc/: code outside it reads the heap only through
 * heap_get_stats(), heap_walk(), heap_format_stats() and heap_check().
 *
 * Picture (default sizes):
 *
 *   heap ──classes[32]──> pool (non-full, has a free block) <-> pool <-> ...
 *     │        └─free cache: bottom slot + stack[32][64], newest on top, popped first
 *     │
 *     └─usable arenas, fewest free pools first
 *          arena: 1 MiB, aligned to 1 MiB, 64 pools of 16 KiB
 *            pool: [header 64 B][block][block]...[block][tail < 1 block]
 *
 * Block -> pool is `ptr & pool_mask`; block -> arena ownership is one bit in
 * a flat bitmap indexed by `ptr >> HEAP_MAP_SHIFT`.
 */
#ifndef TICKD_ALLOC_TYPES_H
#define TICKD_ALLOC_TYPES_H

#include <stddef.h>
#include <stdint.h>

#define HEAP_ALIGN_SHIFT 4
#define HEAP_ALIGN       ((size_t)1 << HEAP_ALIGN_SHIFT) /* 16 */
#define HEAP_SMALL_MAX   512
#define HEAP_NCLASSES    (HEAP_SMALL_MAX / HEAP_ALIGN) /* 32 */

#define HEAP_ARENA_SIZE_DEFAULT ((size_t)1 << 20)
#define HEAP_ARENA_SIZE_MIN     ((size_t)256 << 10)
#define HEAP_ARENA_SIZE_MAX     ((size_t)16 << 20)
#define HEAP_POOL_SIZE_DEFAULT  ((size_t)16 << 10)
#define HEAP_POOL_SIZE_MIN      ((size_t)4 << 10)
#define HEAP_POOL_SIZE_MAX      ((size_t)64 << 10)

/* The ownership map has one bit per HEAP_ARENA_SIZE_MIN of address space
 * whatever the arena size (an arena sets arena_size >> HEAP_MAP_SHIFT bits),
 * so the free path shifts by a constant. */
#define HEAP_MAP_SHIFT 18

#define HEAP_LIKELY(x)   __builtin_expect(!!(x), 1)
#define HEAP_UNLIKELY(x) __builtin_expect(!!(x), 0)

/* Under AddressSanitizer a free block is poisoned, so a use after free inside
 * a pool is reported; the allocator unpoisons a block before it reads the
 * free-list link stored in it. */
#if defined(__SANITIZE_ADDRESS__)
#define HEAP_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HEAP_ASAN 1
#endif
#endif
#ifdef HEAP_ASAN
void __asan_poison_memory_region(void const volatile *addr, size_t size);
void __asan_unpoison_memory_region(void const volatile *addr, size_t size);
#define heap__poison(p, n)   __asan_poison_memory_region((p), (n))
#define heap__unpoison(p, n) __asan_unpoison_memory_region((p), (n))
#else
#define heap__poison(p, n)   ((void)(p), (void)(n))
#define heap__unpoison(p, n) ((void)(p), (void)(n))
#endif

/* A free block: its first word links it into its pool's free list. */
typedef struct heap_block {
    struct heap_block *next;
} heap_block_t;

typedef struct heap_arena heap_arena_t;
struct obj_runtime;

/* Where a pool is; a pool is in exactly one state at a time. */
enum heap_pool_state {
    HEAP_POOL_EMPTY = 0,  /* on its arena's free-pool list, no live block */
    HEAP_POOL_USED = 1,   /* on its class list: some blocks live, some free */
    HEAP_POOL_FULL = 2,   /* on no list: every block live, none left to carve */
    HEAP_POOL_CACHED = 3, /* emptied, kept off the list by its class for reuse */
};

/*
 * Pool header, at the start of every pool (pools are aligned to pool_size
 * inside their arena, so `block & pool_mask` finds it). 56 bytes; the first
 * block starts at 64, 16-byte aligned, and the header is one cache line.
 */
typedef struct heap_pool {
    /* Head of the LIFO free list. Invariant: non-NULL while the pool is
     * USED, NULL when FULL (a TICKD_ASSERT at each state change, pool.c).
     * When the list runs dry the allocator carves the next never-used block
     * onto it (or marks the pool FULL). */
    heap_block_t *freeblock;
    /* The pool's size class, &heap->classes[szidx]: the one load a free
     * needs to find the class's free cache. */
    struct heap_class *cls;
    /* Live blocks in this pool (and blocks of it in its class's free
     * cache). 0 means the pool goes back to its arena. */
    uint32_t used;
    /* Offset from the pool start of the next never-used block (bump carving:
     * blocks are only touched when first handed out). */
    uint32_t nextoffset;
    /* Size class index, 0..31; block size is (szidx + 1) * 16. */
    uint8_t szidx;
    /* enum heap_pool_state. */
    uint8_t state;
    /* Largest offset at which a whole block still fits. */
    uint32_t maxnextoffset;
    /* Doubly linked class list while USED; nextpool alone links the arena's
     * free-pool list while EMPTY. */
    struct heap_pool *nextpool;
    struct heap_pool *prevpool;
    /* The arena this pool lives in. */
    heap_arena_t *arena;
} heap_pool_t;

/*
 * Arena bookkeeping. Kept outside the mapping (allocated with malloc when
 * the arena is mapped, a rare event), so every byte of the mapping is pools.
 */
struct heap_arena {
    /* Start of the mapping, aligned to arena_size. */
    uintptr_t base;
    /* Pools with no live block: never carved ones plus the freepools list. */
    uint32_t nfreepools;
    /* Pools in this arena: arena_size / pool_size. */
    uint32_t ntotalpools;
    /* Index of the first never-carved pool; pools at and after it have no
     * header yet. */
    uint32_t ncarved;
    /* Emptied pools, singly linked through nextpool. */
    heap_pool_t *freepools;
    /* Usable-arena list (arenas with at least one free pool), sorted by
     * nfreepools ascending so the fullest arena is used first and nearly
     * empty ones drain. Full arenas are on no list. */
    heap_arena_t *next;
    heap_arena_t *prev;
    /* All arenas, for the stats walk and heap_destroy. */
    heap_arena_t *all_next;
    heap_arena_t *all_prev;
};

/* Blocks a size class's free stack holds (heap_t.stack), above the bottom
 * slot; a free that finds it full first sends the oldest half of the cache
 * (the bottom and the stack's oldest) back to their pools. */
#define HEAP_STACK_SLOTS 64

/* Per size class, one cache line: the fast paths touch only this and the
 * class's free stack. */
typedef struct heap_class {
    /* The bottom of the class's free cache: the block freed when the cache
     * was empty, NULL when it is empty. Above it, the free stack
     * (heap_t.stack[class], `nstack` blocks); invariant: bottom is NULL only
     * if nstack is 0. Allocation takes the stack's top first and the bottom
     * last, so the cache is one LIFO stack of 1 + HEAP_STACK_SLOTS. The
     * bottom has a slot of its own for the case of a free followed at once
     * by an allocation (a tick queue, a decoded tick freed and the next one
     * made): the cache is then never more than one deep, and the two calls
     * read and write this slot alone, not the `nstack` count, whose
     * read-modify-write each call would otherwise have to wait on from the
     * call before. A cached block is free, not yet back on its pool's free
     * list (its pool still counts it in `used`). */
    heap_block_t *bottom;
    /* First non-full pool of the class list, or the heap's sentinel pool
     * (whose freeblock is NULL) when the class has none. */
    heap_pool_t *pool;
    /* Blocks on the class's free stack, heap_t.stack[class], above the
     * bottom slot. 0..HEAP_STACK_SLOTS. */
    uint32_t nstack;
    /* Block size in bytes. */
    uint32_t block_size;
    /* Blocks one pool holds. */
    uint32_t blocks_per_pool;
    /* Blocks handed out over the heap's life. Frees are not counted on the
     * free path: heap_get_stats() derives them as allocs minus the blocks
     * live (counted in the class's pools, less those in its free cache). */
    uint64_t allocs;
    /* An emptied pool the class keeps (CACHED) so that a queue of blocks
     * crossing pool boundaries does not hand pools back to the arena and
     * take them again every few hundred blocks; NULL when none. */
    heap_pool_t *cached;
    /* Pools of this class that are USED, FULL or CACHED. */
    uint32_t npools;
    /* Of those, FULL ones. */
    uint32_t nfull;
} __attribute__((aligned(64))) heap_class_t;

/* A live large (system allocator) block, in the heap's large-block table:
 * an open-addressing set keyed by address, so that telling a large block from
 * a foreign pointer never reads the memory around the pointer. */
typedef struct heap_large {
    uintptr_t addr; /* the block; 0 marks an empty slot */
    size_t size;    /* requested bytes */
} heap_large_t;

typedef struct heap {
    /* Fast-path fields first. */
    /* Requests with size - 1 < fast_limit take the inline path: 512 normally,
     * 0 in debug mode so that every request goes through the checks. */
    size_t fast_limit;
    uintptr_t pool_mask; /* ~(pool_size - 1) */
    int debug;           /* debug mode: fills, guards, checks */
    /* Ownership: bit (addr >> HEAP_MAP_SHIFT) is set while the arena there
     * is in use. One bit per 256 KiB of the 48-bit address space, in a
     * reservation that is never touched except where arenas are (128 MiB of
     * address space, a page or two of memory). */
    uint64_t *arena_map;
    size_t arena_map_bits;
    /* arena_map_bits, or 0 in debug mode so that heap_free() sends every
     * pointer to the checked path. */
    size_t fast_map_bits;
    heap_class_t classes[HEAP_NCLASSES];
    /* The free stacks: entries [0, classes[i].nstack) of stack[i] are
     * blocks of class i, the oldest at [0], above classes[i].bottom. The
     * free caches hold pointers, so a free writes nothing into the freed
     * block, and a block freed and taken again (a queue, a book update)
     * never touches its pool header. */
    heap_block_t *stack[HEAP_NCLASSES][HEAP_STACK_SLOTS];

    /* Slow-path state. */
    size_t arena_size;
    size_t pool_size;
    heap_pool_t sentinel;    /* freeblock NULL: "no pool for this class" */
    heap_arena_t *usable;    /* usable-arena list head (fewest free pools) */
    heap_arena_t **nfp2last; /* [n] = last usable arena with n free pools */
    heap_arena_t *all;       /* every mapped arena */
    heap_arena_t *spare;     /* one empty arena kept mapped, pages released */
    heap_large_t *large;     /* live large blocks, linear probing */
    size_t large_cap;        /* slots in large: a power of two, or 0 */
    size_t large_count;      /* live large blocks */
    /* The object runtime (alloc/runtime.h) that the layer above attaches
     * with obj_runtime_create() and detaches with obj_runtime_destroy();
     * NULL without one. The heap never reads it. */
    struct obj_runtime *rt;

    /* Counters (read by heap_get_stats). */
    uint64_t arenas_allocated;  /* mappings made over the heap's life */
    uint64_t arenas_released;   /* mappings given back to the OS */
    uint32_t narenas;           /* arenas mapped now, spare included */
    uint32_t narenas_highwater; /* most arenas mapped at once */
    size_t mapped_peak;         /* most arena bytes mapped at once */
    uint64_t large_allocs;
    uint64_t large_frees;
    size_t large_bytes; /* requested bytes in live large blocks */
    size_t large_bytes_peak;
} heap_t;

/* Statistics of one size class, as reported. */
typedef struct heap_class_stats {
    size_t block_size;
    uint64_t allocs;      /* total blocks handed out */
    uint64_t frees;       /* total blocks given back */
    uint64_t used_blocks; /* live now */
    uint64_t free_blocks; /* free or never carved, in this class's pools */
    uint32_t pools;       /* USED + FULL pools of this class */
    uint32_t full_pools;
} heap_class_stats_t;

/*
 * Whole-heap statistics. The byte breakdown adds up exactly:
 *   mapped_bytes = used_bytes + available_bytes + empty_pool_bytes
 *                + pool_header_bytes + alignment_bytes + quantization_bytes
 */
typedef struct heap_stats {
    size_t arena_size;
    size_t pool_size;
    uint32_t arenas; /* mapped now, spare included */
    uint32_t arenas_highwater;
    uint64_t arenas_allocated; /* total */
    uint64_t arenas_released;  /* total */
    uint32_t pools_used;
    uint32_t pools_full;
    uint32_t pools_empty; /* in arenas, spare's included */
    size_t mapped_bytes;  /* arenas * arena_size */
    size_t mapped_bytes_peak;
    size_t used_bytes;         /* live blocks * block size */
    size_t available_bytes;    /* free and uncarved blocks in USED pools */
    size_t empty_pool_bytes;   /* EMPTY pools, whole */
    size_t pool_header_bytes;  /* headers of USED and FULL pools */
    size_t alignment_bytes;    /* padding between header and first block */
    size_t quantization_bytes; /* pool tails too small for a block */
    uint64_t large_allocs;
    uint64_t large_frees;
    size_t large_bytes; /* requested bytes of live large blocks */
    size_t large_bytes_peak;
    heap_class_stats_t classes[HEAP_NCLASSES];
} heap_stats_t;

/* One mapped arena, as heap_walk() reports it. */
typedef struct heap_arena_info {
    uintptr_t base;      /* start of the mapping */
    uint32_t pools;      /* pools it holds: arena_size / pool_size */
    uint32_t free_pools; /* of them, pools with no live block (EMPTY or never carved) */
    int spare;           /* the one empty arena kept mapped, its pages released */
} heap_arena_info_t;

/* One pool of an arena, as heap_walk() reports it. */
typedef struct heap_pool_info {
    uint32_t index;     /* position in its arena, 0 at the arena's base */
    uint8_t state;      /* enum heap_pool_state; a never-carved pool is EMPTY */
    uint8_t size_class; /* 0..HEAP_NCLASSES-1; 0 and meaningless when EMPTY */
    uint32_t used;      /* live blocks: handed out and not freed (blocks in the
                         * class's free cache are free); 0 when EMPTY or CACHED */
    uint32_t capacity;  /* blocks the pool holds; 0 when EMPTY */
} heap_pool_info_t;

#endif
