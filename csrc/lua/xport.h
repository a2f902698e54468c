/*
 * xport.h -- what the export and the import share: the stats table both
 * return, the clock and the progress call.
 */
#ifndef LLS_XPORT_H
#define LLS_XPORT_H

#include <stdint.h>

#include "lua/store.h"
#include "vector/distance.h"
#include "value/value.h"

#define LLS_XPORT_VERSION "1.0"

/* Records per passthrough section, in first-seen order. */
typedef struct lls_xsection {
  char *name;
  size_t len;
  int64_t count;
} lls_xsection;

/* What an export wrote or an import read; pushed as the stats table. */
typedef struct lls_xstats {
  int64_t kv_entries, vectors, collections, skipped;
  /* counted inside the single-object sections knowledge_graph and artifacts */
  int64_t entities, relationships, artifact_content, artifacts;
  lls_xsection *sections;
  size_t nsections, cap;
  int64_t bytes;
  double seconds;
} lls_xstats;

/* Adds n records to section `name`. 0, or -1 when out of memory. */
int lls_xstats_add(lls_xstats *s, lls_str name, int64_t n);

/* The record count of a section stored as one value (ord -1): the
 * entities and relationships of knowledge_graph, the content and
 * artifacts of artifacts (each also added to its own field), else 1. */
int64_t lls_xstats_single(lls_xstats *s, lls_str name, const lls_value *v);

/* Counts n records of part `part` of a component section in its own
 * field where rs-llmspell's ImportStats has one (artifacts: "content" ->
 * artifact_content, "artifacts" -> artifacts). */
void lls_xstats_part(lls_xstats *s, lls_str name, const char *part, int64_t n);

void lls_xstats_free(lls_xstats *s);

/* Pushes { kv_entries=, vectors=, collections=, skipped=, sections={...},
 * agent_states=, workflow_states=, sessions=, patterns=, events=, hooks=,
 * entities=, relationships=, artifacts=, artifact_content=, total=,
 * bytes=, seconds= }. */
void lls_xstats_push(lua_State *L, const lls_xstats *s);

/* Seconds on a monotonic clock, for the stats' `seconds`. */
double lls_xclock(void);

/* Calls the progress function at stack index fn with (done, total,
 * phase[, bytes, bytes_total]); a negative total or bytes_total is
 * passed as nil; with_bytes = 0 passes the first three only. Errors
 * propagate (the caller runs under lua_pcall and cleans up). */
void lls_xprogress(lua_State *L, int fn, int64_t done, int64_t total, const char *phase,
                   int with_bytes, int64_t bytes, int64_t bytes_total);

#endif
