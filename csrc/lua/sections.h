/*
 * lua/sections.h -- how a component's export section travels: each
 * component's binding file defines one lls_section_codec, sections.c lists
 * them, and the exporter (export_rows.c) and importer (import_rows.c) go
 * through the list. A section no codec names stays passthrough.
 *
 * Records are lls_value trees with rs-llmspell's field names (COMPONENTS.md:
 * times in integer microseconds, bytes in base64); the codec converts
 * between them and its op table, so neither the exporter nor the importer
 * knows a component.
 */
#ifndef LLS_LUA_SECTIONS_H
#define LLS_LUA_SECTIONS_H

#include <stdint.h>

#include "backend/backend.h"
#include "value/value.h"

/* Where dump() sends records: the exporter's writer. 0, or -1 + err. */
typedef int (*lls_section_emit)(void *ud, const lls_value *rec, lls_error *err);

typedef struct lls_section_codec {
  const char *name; /* the key under "data": "sessions" */
  /* NULL: the section is an array of records. Otherwise it is an object
   * whose members, in this order, are arrays (artifacts: "content",
   * "artifacts"), NULL-ended. */
  const char *const *parts;
  /* Sends every record of part `part` (0 when parts is NULL) of the
   * tenant's rows in cb to emit, in a fixed order, reading page by page
   * (memory stays bounded). *n counts records sent. 0, or -1 + err. */
  int (*dump)(lls_backend *cb, int part, int64_t now, lls_section_emit emit, void *ud,
              int64_t *n, lls_error *err);
  /* Stores one record of part `part` (import): a conflict with an existing
   * record (same id) is resolved by on_conflict; *written = 0 when it was
   * skipped. cb NULL: a dry run, which checks the record as a real import
   * would and writes nothing (*written = 1 for a record that would be). Bad records fail with LLS_EFORMAT naming the field. Called
   * inside the importer's transaction, in file order; records that refer
   * to others (artifacts to sessions) may come first. 0, or -1 + err. */
  int (*load)(lls_backend *cb, int part, const lls_value *rec, lls_conflict on_conflict,
              int64_t now, int *written, lls_error *err);
  /* The tenant's record count of the section (progress). */
  int (*count)(lls_backend *cb, int64_t now, int64_t *n, lls_error *err);
  /* With parts: the record count of one part, which db:stats() reports
   * apart (lls_section_part_key). */
  int (*count_part)(lls_backend *cb, int part, int64_t now, int64_t *n, lls_error *err);
} lls_section_codec;

/* The codecs, NULL-ended. */
extern const lls_section_codec *const lls_section_codecs[];

/* The name db:stats().components gives part `part` of c: the part's own
 * name when it is named like the section or the section's name is not a
 * plural ("knowledge_graph": "entities", "relationships"), else the
 * section's name without its plural "s", "_" and the part
 * ("artifact_content"), as rs-llmspell's ImportStats names them. Writes at
 * most cap bytes (NUL included). */
void lls_section_part_key(const lls_section_codec *c, int part, char *out, size_t cap);

/* The codec named name (len bytes), or NULL: the section is passthrough. */
const lls_section_codec *lls_section_find(const char *name, size_t len);

#endif
