/*
 * graph.h -- the HNSW graph algorithms over an index's storage: the
 * best-first walk, linking a node in and relinking around a deleted one.
 * hnsw.c calls them; private to the index, like hnsw_internal.h.
 */
#ifndef LLS_HNSW_GRAPH_H
#define LLS_HNSW_GRAPH_H

#include <stddef.h>
#include <stdint.h>

#include "vector/hnsw_internal.h"
#include "vector/scratch.h"

/* Mode bits; each caller passes a constant so the compiler specialises. */
#define MODE_LOCK 1u  /* copy link lists under node locks (parallel build) */
#define MODE_CHECK 2u /* results must be live, not `self`, and pass the filter */

/*
 * Links slot s (vector, level and empty link lists already in place) into
 * the graph. mode is 0, or MODE_LOCK while other threads are inserting at
 * the same time (node locks must then exist, see hnsw_add_batch). Returns
 * HNSW_OK or HNSW_ENOMEM; on failure s is unreachable, so the caller can
 * simply free the slot again.
 */
int hnsw_graph_insert(hnsw_index *ix, ctx *c, uint32_t s, unsigned mode);

/* Relinks s's neighbours around s at every level and moves the entry
 * point off s. s is already flagged deleted and not counted live; its own
 * links stay, so searches that still reach it pass through. */
void hnsw_graph_unlink(hnsw_index *ix, ctx *c, uint32_t s);

/* Picks a new entry point when the old one (now flagged deleted) leaves:
 * a live neighbour on the top level if any, else the highest live node. */
void hnsw_graph_replace_entry(hnsw_index *ix);

/*
 * Searches the graph for the ef nearest accepted nodes to the prepared
 * query q (see prep_query): greedy descent through the upper levels from
 * the entry point, then a best-first search of level 0. Deleted slots and
 * those the filter (may be NULL) rejects are never results. The index
 * must hold a live vector and ef must be at least 1. Leaves the results
 * in c->res, a max-heap, and returns their number, or HNSW_ENOMEM.
 */
int hnsw_graph_search(const hnsw_index *ix, ctx *c, const float *q, size_t ef,
                      hnsw_filter_fn filter, void *ud);

#endif
