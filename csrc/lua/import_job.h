/*
 * import_job.h -- one run of storage.importer's from_file/from_string:
 * the parser's position in the document, the record being assembled, the
 * batches waiting for the backend, the collections met, and the first
 * failure. A run lives in a userdata whose __gc calls lls_ijob_release.
 */
#ifndef LLS_LUA_IMPORT_JOB_H
#define LLS_LUA_IMPORT_JOB_H

#include <locale.h>
#include <stdint.h>
#include <stdio.h>

#include <yajl/yajl_parse.h>

#include "base/b64.h"
#include "base/hashidx.h"
#include "base/limits.h"
#include "lua/store.h"
#include "lua/sections.h"
#include "lua/xport.h"
#include "value/json.h"
#include "value/json_scan.h"

#define LLS_IMPORT_BATCH_BYTES ((size_t)32 << 20) /* a batch is written early once this big */

typedef enum evt {
  E_NULL, E_BOOL, E_NUMBER, E_STRING, E_START_MAP, E_KEY, E_END_MAP, E_START_ARRAY,
  E_END_ARRAY
} evt;

/* Where the parser is in the document's outer structure. */
typedef enum pstate {
  P_START, /* before the document */
  P_TOP,   /* in the top object */
  P_DATA,  /* in "data" */
  P_KV,    /* in data.kv_store */
  P_COLLS, /* in data.vector_collections */
  P_VMAP,  /* in data.vector_embeddings */
  P_VEC,   /* in one dimension's array */
  P_SEC,   /* in a passthrough (or component) section's array */
  P_CPARTS, /* in a component section that is an object of arrays (artifacts) */
  P_CPART, /* in one of those arrays */
  P_END    /* after the document */
} pstate;

/* What the value after the last key is. */
typedef enum expect { X_NONE, X_VERSION, X_DATA, X_SKIP, X_KV, X_COLLS, X_VMAP, X_SEC } expect;

typedef enum rkind { R_KV, R_COLL, R_VEC, R_SEC } rkind;

/* The embedding of the vector record being assembled. */
typedef enum emb { EMB_NONE, EMB_NEXT, EMB_CAPTURE } emb;

/* A KV record in the batch: offsets into the arena (it moves as it grows). */
typedef struct kvslot {
  size_t koff, klen, voff, vlen, moff, mlen, ioff, ilen;
  int64_t created_at, updated_at, expires_at;
} kvslot;

typedef struct vslot {
  size_t ioff, ilen, soff, slen, moff, mlen, voff;
  int64_t created_at, updated_at, event_time, expires_at;
  int has_event_time;
} vslot;

typedef struct secslot {
  size_t noff, nlen, joff, jlen;
  int64_t ord;
} secslot;

/* A collection the file's vectors go to. */
typedef struct ccache {
  lls_coll_info info;
  int exists; /* 0 only in a dry run: it would be created */
} ccache;

typedef struct lls_ijob {
  /* input */
  FILE *f;
  luaL_Stream *stream; /* from_file(handle): the caller's file (f is its
                        * FILE): read from where it stands, never closed */
  const char *text; /* from_string: the Lua string (kept alive on the stack) */
  size_t text_len, text_pos;
  unsigned char *chunk;
  uint64_t read_off;    /* bytes of input read before the current chunk */
  uint64_t offset;      /* bytes of the stream handed to yajl (or captured) so far */
  int64_t bytes_total;  /* -1: unknown (a pipe) */
  /* the stream on its way to yajl (import_feed.c) */
  lls_jscan scan;       /* strictness, token boundaries, captures */
  lls_buf held;         /* file input: a token that spans chunks, copied */
  const unsigned char *hold_p; /* that token so far (in held, or in text) */
  size_t hold_n;
  uint64_t hold_at;     /* its offset in the stream */
  int cap_kind;         /* the capture asked for or running (import_feed.c) */
  uint64_t cap_at;      /* where its string starts */
  lls_b64_dec dec;      /* decodes it... */
  lls_buf *cap_out;     /* ...into this buffer */
  yajl_handle y;
  lls_vbuild *vb;
  locale_t cloc;
  /* settings */
  lls_handle *h;
  lls_conflict on_conflict;
  int dry_run;
  size_t batch_size;
  int64_t now;
  /* the outer structure */
  pstate ps;
  expect ex;
  int skipping, skip_depth;
  int version_seen;
  const char *phase;
  char dimkey[16];
  int dim;
  lls_buf secname; /* the current passthrough section */
  int sec_single, sec_skip;
  const lls_section_codec *codec; /* the current section is this component's */
  lls_backend *cb;                /* ...whose rows live there */
  int cpart;                      /* ...in this part (-1: none yet, -2: unknown, skipped) */
  int64_t idx;     /* index of the next record in its container */
  /* the record being assembled */
  int in_rec;
  rkind rk;
  emb em;
  int have_floats;      /* j->floats holds the embedding (a placeholder in the tree)... */
  int emb_b64, emb_bad; /* ...decoded from a base64 string (0: from an array); bad: not base64 */
  lls_buf floats;
  int val_next;         /* the next event is a kv record's "value" */
  int have_value;       /* the kv record's value was decoded as it streamed: its bytes
                           end lls_ijob_value_buf(j), from val_off (a placeholder in the tree) */
  int val_bad;          /* ...or it was not base64 */
  size_t val_off;
  lls_buf capval;       /* storage.records: the bytes of that value */
  lls_buf tmp;     /* scratch: decoded vector bytes, labels */
  /* batches */
  kvslot *kv;
  lls_kv_rec *kvrecs;
  size_t nkv, kvcap;
  lls_buf kvarena;
  lls_hidx kvseen;
  vslot *vs;
  lls_vec_row *vrows;
  lls_str *vids;
  unsigned char *vpresent;
  size_t nvec, vcap;
  lls_buf varena;
  lls_hidx vseen;
  size_t vcoll;    /* cache index of the batch's collection */
  secslot *ss;
  lls_str *snames, *sjson;
  int64_t *sords;
  size_t nsec, scap;
  lls_buf sarena;
  /* collections */
  ccache *colls;
  size_t ncolls, ccap;
  lls_hidx cidx;
  /* outcome */
  lls_xstats st;
  int64_t done, reported;
  const char *reported_phase;
  int failed;
  lls_error err;
  /* storage.records: takes each assembled record (and owns it) instead of
   * the import's writers; 1 when fine, 0 after lls_ijob_fail. */
  int (*sink)(struct lls_ijob *j, lls_value *v);
  void *sink_ud;
} lls_ijob;


/* Records a failure for after the parse (callbacks must not raise); the
 * first one wins. Returns 0, so callers can `return lls_ijob_fail(...)`. */
int lls_ijob_fail(lls_ijob *j, lls_code code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* A backend failure, kept as the backend reported it. Returns 0. */
int lls_ijob_fail_backend(lls_ijob *j, const lls_error *err);

/* "out of memory" as the run's failure. Returns 0. */
int lls_ijob_oom(lls_ijob *j);

/* The current record's name for messages: "kv_store[3]",
 * "vector_embeddings.768[12]", "sessions[0]", "knowledge_graph". */
const char *lls_ijob_label(lls_ijob *j, char *buf, size_t cap);

/* Where a kv record's value is decoded as it streams: the import's batch
 * arena, or storage.records' own buffer. */
lls_buf *lls_ijob_value_buf(lls_ijob *j);

/* Forgets the record's streamed value (a second "value" member replaces
 * it). */
void lls_ijob_drop_value(lls_ijob *j);

/* The backend the error objects of j name: its store's, or NULL when j
 * reads for storage.records, which has no store. */
const char *lls_ijob_backend(const lls_ijob *j);

/* Frees everything the run holds. Idempotent. */
void lls_ijob_release(lls_ijob *j);

#endif
