/*
 * snapshot.h -- the snapshot format of an HNSW index (csrc/vector/snapshot.c):
 * hnsw_serialize writes an index to a stream, hnsw_deserialize checks and
 * reads one back. Part of the index's API: hnsw.h includes this header,
 * so its callers need not.
 */
#ifndef LLS_HNSW_SNAPSHOT_H
#define LLS_HNSW_SNAPSHOT_H

#include <stddef.h>

typedef struct hnsw_index hnsw_index; /* hnsw.h */

/* Stream callbacks for (de)serialisation: move exactly n bytes and return
 * 0, or return nonzero on any failure (including a short read). */
typedef int (*hnsw_write_fn)(void *ud, const void *p, size_t n);
typedef int (*hnsw_read_fn)(void *ud, void *p, size_t n);

/*
 * Writes a snapshot: a versioned header, the graph, the vectors and the free
 * slots, then a CRC-32C of all preceding bytes. Slots are preserved, so a
 * caller's slot -> id map stays valid across a round trip. The format is
 * native little-endian. Returns HNSW_OK, HNSW_EIO if write failed, or
 * HNSW_ENOMEM. Counts as a reader: may run alongside searches.
 */
int hnsw_serialize(const hnsw_index *ix, hnsw_write_fn write, void *ud);

/*
 * Reads a snapshot written by hnsw_serialize. Every field is checked (and
 * the checksum last), so truncated, corrupt or hostile input yields NULL and
 * a message in err[0..errlen) (err may be NULL), never a crash. The loaded
 * index has the same slots, graph and free list, picks the best kernels for
 * the CPU it runs on, and answers searches exactly as the saved one did
 * when that is the same kind of CPU (other kernels may round differently).
 */
hnsw_index *hnsw_deserialize(hnsw_read_fn read, void *ud, char *err, size_t errlen);

#endif
