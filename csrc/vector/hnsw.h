/*
 * hnsw.h -- an in-memory HNSW vector index (Malkov & Yashunin, 2016/2018).
 * Plain C, no Lua: csrc/collection/ builds the Lua collection on top and
 * spec/c/test_hnsw.c tests it alone.
 *
 * Slots. Every vector lives in a slot, a dense uint32 number chosen by the
 * index. A deleted slot is handed out again by the next add, so the caller
 * keeps its own slot -> id map (the collection's rows) and the index never
 * grows under steady add/delete. Slot numbers are stable until the slot is
 * deleted.
 *
 * Distances are "smaller is nearer" for every metric: cosine 1 - cos in
 * [0, 2]; l2 the Euclidean distance; ip -dot(a, b); l1 sum |a_i - b_i|.
 * Vectors are stored as given (for cosine the index also keeps each
 * vector's inverse norm, so hnsw_vector returns the caller's vector
 * bit for bit).
 *
 * Concurrency. Functions taking a const index (hnsw_search,
 * hnsw_brute_force, hnsw_serialize, hnsw_vector, hnsw_count, ...) are
 * readers: any number of threads may run them on one index at once (they
 * share a pool of scratch space behind a mutex). Functions taking a
 * non-const index (add, add_batch, update, delete) are writers: a writer
 * needs the index to itself, with no reader or other writer during the
 * call, because it may move storage. hnsw_add_batch parallelises
 * internally. Different indexes are independent: there is no global state,
 * so two threads may use two indexes freely.
 *
 * Errors are negative HNSW_E* codes; no function aborts on a failed
 * allocation, and a failed call leaves the index usable.
 */
#ifndef LLS_HNSW_H
#define LLS_HNSW_H

#include <stddef.h>
#include <stdint.h>

#include "vector/distance.h"
#include "vector/snapshot.h" /* hnsw_serialize, hnsw_deserialize */

#define HNSW_OK 0
#define HNSW_ENOMEM (-1)   /* allocation failed */
#define HNSW_EINVAL (-2)   /* bad argument (dimension, parameter, ...) */
#define HNSW_ENOENT (-3)   /* the slot holds no live vector */
#define HNSW_EFULL (-4)    /* 2^32 - 1 slots in use */
#define HNSW_EIO (-5)      /* the write callback of hnsw_serialize failed */

/* Largest accepted dimension and M; both far beyond practical use. */
#define HNSW_MAX_DIM 65536
#define HNSW_MAX_M 1024

typedef struct hnsw_index hnsw_index;

/* One search result. */
typedef struct hnsw_hit {
  uint32_t slot;
  float distance;
} hnsw_hit;

/* A search filter: returns nonzero to accept the slot. Called from the
 * searching thread only, at most once per slot per search. */
typedef int (*hnsw_filter_fn)(void *ud, uint32_t slot);

/* A short English description of an HNSW_E* code. Never NULL. */
const char *hnsw_strerror(int code);

/*
 * Creates an empty index for vectors of `dim` floats (1..HNSW_MAX_DIM).
 * m is the number of links per node on upper levels (2..HNSW_MAX_M; level 0
 * keeps 2*m); ef_construction the candidate list size while inserting (at
 * least m is used); initial_capacity a hint (0 is fine: capacity grows).
 * seed makes the level choice reproducible: the same seed and the same
 * single-threaded sequence of calls give the same graph. The distance
 * kernels (AVX-512, AVX2+FMA or scalar) are picked here for this CPU.
 * Returns NULL on a bad argument or when out of memory.
 */
hnsw_index *hnsw_new(size_t dim, lls_metric metric, size_t m, size_t ef_construction,
                     size_t initial_capacity, uint64_t seed);

/* Frees the index and everything it owns. NULL is a no-op. */
void hnsw_free(hnsw_index *ix);

/*
 * Adds one vector (dim floats; the caller checks for NaN and infinity) and
 * stores its slot in *slot_out (may be NULL). Reuses the most recently
 * deleted slot if there is one, else takes a new one, growing the storage
 * as needed. Returns HNSW_OK, HNSW_ENOMEM or HNSW_EFULL; on error nothing
 * was added.
 */
int hnsw_add(hnsw_index *ix, const float *vec, uint32_t *slot_out);

/*
 * Adds n vectors stored back to back (n * dim floats), writing their slots
 * to slots_out[0..n) (may be NULL). With threads > 1 the graph is built by
 * that many threads at once (per-node spinlocks; one global lock only while
 * the entry point changes); threads <= 0 means one per online core, and
 * batches under 128 vectors per thread are added on the calling thread.
 * The calling thread always works too, so if threads cannot be started the
 * batch still completes. All or nothing: on error (HNSW_ENOMEM, HNSW_EFULL)
 * none of the n vectors is in the index. With threads == 1 the result is
 * identical to n calls of hnsw_add.
 */
int hnsw_add_batch(hnsw_index *ix, const float *vecs, size_t n, uint32_t *slots_out,
                   int threads);

/*
 * Replaces the vector in a live slot (an upsert keeps its slot): the node is
 * unlinked as by hnsw_delete and inserted again with the new vector.
 * Returns HNSW_OK, HNSW_ENOENT if the slot is not live, or HNSW_ENOMEM (the
 * slot then still holds the new vector but may be poorly linked; deleting
 * or updating it again is safe).
 */
int hnsw_update(hnsw_index *ix, uint32_t slot, const float *vec);

/*
 * Deletes the vector in a slot. Its neighbours are relinked around it at
 * once (each neighbour that linked to it takes replacements from the
 * deleted node's own links, chosen by the insert heuristic's diversity
 * test), so recall holds under steady churn; the slot is then free for the
 * next add. Returns HNSW_OK or HNSW_ENOENT if the slot is not live.
 * Allocates only scratch space; on HNSW_ENOMEM the slot is deleted but
 * its neighbours were not relinked.
 */
int hnsw_delete(hnsw_index *ix, uint32_t slot);

/*
 * Approximate k nearest live vectors to q (dim floats), best first, into
 * out[0..k). ef is the candidate list size (max(ef, k) is used); larger is
 * slower and more accurate. With a filter, only accepted slots are
 * returned, but the walk still crosses rejected ones, so recall holds
 * under selective filters (measured on siftsmall with ef=100: recall@10
 * 1.0 at 50%, 10% and 1%). The walk has to visit about ef / selectivity
 * nodes, though, so when few slots match hnsw_brute_force is faster as well
 * as exact: as a rule, use it when fewer than about 50 * ef slots pass the
 * filter (on siftsmall, 10k vectors: graph 0.30 ms vs brute force 0.09 ms
 * per query at 10%; 1.7 ms vs 0.04 ms at 1%). Returns the number of hits
 * (< k when fewer live vectors match), or HNSW_ENOMEM. Many threads may
 * search one index at once.
 */
int hnsw_search(const hnsw_index *ix, const float *q, size_t k, size_t ef,
                hnsw_filter_fn filter, void *ud, hnsw_hit *out);

/*
 * Exact k nearest live vectors to q among those the filter accepts (all
 * when filter is NULL), best first; ties go to the lower slot. Cost is one
 * filter call per live slot and one distance per accepted slot. Returns
 * the number of hits or HNSW_ENOMEM. Safe to call from many threads.
 */
int hnsw_brute_force(const hnsw_index *ix, const float *q, size_t k, hnsw_filter_fn filter,
                     void *ud, hnsw_hit *out);

/* The true distance between q and the vector in a live slot (NAN if the
 * slot is not live), as hnsw_search would report it. */
float hnsw_distance(const hnsw_index *ix, const float *q, uint32_t slot);

/* Number of live vectors. */
size_t hnsw_count(const hnsw_index *ix);

/* One past the highest slot ever used: every live slot is below it. */
uint32_t hnsw_slot_limit(const hnsw_index *ix);

/* Nonzero when the slot holds a live vector. */
int hnsw_is_live(const hnsw_index *ix, uint32_t slot);

/* Bytes of memory the index holds (graph, vectors, scratch pools). */
size_t hnsw_memory_bytes(const hnsw_index *ix);

/*
 * The stored vector of a live slot, exactly as it was given (dim floats),
 * or NULL if the slot is not live. The pointer is valid until the next
 * call that takes a non-const index.
 */
const float *hnsw_vector(const hnsw_index *ix, uint32_t slot);

/* The parameters the index was made with. */
size_t hnsw_dim(const hnsw_index *ix);
lls_metric hnsw_metric(const hnsw_index *ix);
size_t hnsw_m(const hnsw_index *ix);
size_t hnsw_ef_construction(const hnsw_index *ix);

/* The kernel set in use: "avx512", "avx2" or "scalar". */
const char *hnsw_kernel_name(const hnsw_index *ix);

/*
 * Makes an empty index use another kernel set (from lls_kernels_for), for
 * tests and benchmarks of the slower paths. Returns HNSW_OK, or HNSW_EINVAL
 * if k is NULL or the index has ever held a vector.
 */
int hnsw_use_kernels(hnsw_index *ix, const lls_kernels *k);

#endif
