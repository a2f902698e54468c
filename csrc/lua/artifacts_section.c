/*
 * artifacts_section.c -- the "artifacts" export section (artifacts_section.h):
 * {content = [...], artifacts = [...]} with rs-llmspell's field names,
 * dumped page by page through the artifact op table and loaded record by
 * record. Apart from the Artifacts object (artifacts.c) because the store
 * and the exporter reach the section list: a codec using the component
 * base would close a cycle of calls store -> sections -> component ->
 * store.
 *
 * Content goes out as its original bytes (is_compressed false, the form
 * every reader takes) and comes in either so or in rs-llmspell's
 * compressed form (a 4-byte little-endian size, then one LZ4 block); its
 * bytes must hash to content_hash (`format` otherwise). Reference counts
 * and sessions' artifact counts are recomputed from the rows stored, not
 * taken from the file.
 */
#include "lua/artifacts_section.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/artifacts.h"
#include "base/b64.h"
#include "base/compress.h"
#include "base/limits.h"
#include "base/sha256.h"
#include "value/json.h"

_Static_assert(LLS_MAX_ARTIFACT_ID == 598, "the messages below say 598");

/* Artifacts rows per page of an export. */
#define ARTIFACT_PAGE 256
/* Content rows per page of an export (each is read whole into memory). */
#define CONTENT_PAGE 16

/* --------------------------------------------------------------- export */

/* Sets key to v in rec; 0, or -1 (out of memory: v is freed). */
static int put(lls_value *rec, const char *key, lls_value *v) {
  return lls_value_set(rec, key, strlen(key), v);
}

static lls_value *str_value(lls_str s) {
  return s.ptr == NULL ? lls_value_null() : lls_value_string(s.ptr, s.len);
}

/* Reads content c whole into data (decoded, checked against its hash). */
static int read_content(lls_backend *cb, const lls_content_row *c, lls_buf *data,
                        lls_buf *chunk, lls_error *err) {
  lls_str hash = {c->hash, LLS_SHA256_HEX - 1};
  data->len = 0;
  for (int64_t i = 0; i < c->chunk_count; i++) {
    int found;
    if (cb->vt->artifacts->read_chunk(cb, hash, i, chunk, &found, err) != 0) return -1;
    if (!found)
      return lls_error_set(err, LLS_EINTEGRITY, "artifact content %s: chunk %lld is missing",
                           c->hash, (long long)i);
    if (lls_buf_append(data, chunk->data, chunk->len) != 0) return lls_error_oom(err);
  }
  char got[LLS_SHA256_HEX];
  if (lls_sha256_hex(data->len ? data->data : "", data->len, got) != 0)
    return lls_error_oom(err);
  if ((int64_t)data->len != c->size_bytes || memcmp(got, c->hash, LLS_SHA256_HEX) != 0)
    return lls_error_set(err, LLS_EINTEGRITY,
                         "artifact content %s: its stored bytes do not match its SHA-256",
                         c->hash);
  return 0;
}

/* One content row as rs-llmspell's record, data as the original bytes
 * (is_compressed false: the form every reader takes). */
static int dump_content_row(lls_backend *cb, const lls_content_row *c, lls_section_emit emit,
                            void *ud, lls_buf *data, lls_buf *chunk, lls_buf *b64,
                            lls_error *err) {
  if (read_content(cb, c, data, chunk, err) != 0) return -1;
  b64->len = 0;
  if (lls_b64_quoted(b64, data->data ? data->data : "", data->len) != 0)
    return lls_error_oom(err);
  lls_value *rec = lls_value_object();
  if (rec == NULL) return lls_error_oom(err);
  int rc = put(rec, "content_hash", lls_value_string(c->hash, LLS_SHA256_HEX - 1)) ||
           put(rec, "created_at", lls_value_int(c->created_at)) ||
           put(rec, "data", lls_value_string(b64->data + 1, b64->len - 2)) ||
           put(rec, "is_compressed", lls_value_bool(0)) ||
           put(rec, "last_accessed_at", lls_value_int(c->last_accessed_at)) ||
           put(rec, "original_size_bytes", lls_value_int(c->size_bytes)) ||
           put(rec, "reference_count", lls_value_int(c->reference_count)) ||
           put(rec, "size_bytes", lls_value_int(c->size_bytes)) ||
           put(rec, "storage_type", lls_value_string("bytea", 5)) ||
           put(rec, "tenant_id", lls_value_string(c->tenant, strlen(c->tenant)));
  if (rc != 0) {
    lls_value_free(rec);
    return lls_error_oom(err);
  }
  rc = emit(ud, rec, err);
  lls_value_free(rec);
  return rc;
}

static int dump_contents(lls_backend *cb, lls_section_emit emit, void *ud, int64_t *n,
                         lls_error *err) {
  lls_content_rows rows = {0};
  lls_buf data = {0}, chunk = {0}, b64 = {0};
  char after[LLS_SHA256_HEX] = "";
  int rc = 0;
  for (;;) {
    rows.count = 0;
    lls_str cursor = {after, strlen(after)};
    if ((rc = cb->vt->artifacts->dump_content(cb, cursor, CONTENT_PAGE, &rows, err)) != 0) break;
    for (size_t i = 0; rc == 0 && i < rows.count; i++) {
      rc = dump_content_row(cb, &rows.rows[i], emit, ud, &data, &chunk, &b64, err);
      if (rc == 0) (*n)++;
      /* one content's buffers go before the next: each may be large */
      lls_buf_free(&data);
      lls_buf_free(&b64);
    }
    if (rc != 0 || rows.count < CONTENT_PAGE) break;
    memcpy(after, rows.rows[rows.count - 1].hash, LLS_SHA256_HEX);
  }
  lls_content_rows_free(&rows);
  lls_buf_free(&data);
  lls_buf_free(&chunk);
  lls_buf_free(&b64);
  return rc;
}

/* JSON text as a value (metadata, tags) for a record. */
static lls_value *json_value(lls_str json, lls_str id, lls_error *err) {
  char msg[200];
  lls_value *v = lls_json_decode(json.ptr, json.len, msg, sizeof msg);
  if (v == NULL)
    lls_error_set(err, LLS_EINTEGRITY, "artifact '%.*s': stored JSON cannot be read: %s",
                  (int)(id.len > 200 ? 200 : id.len), id.ptr, msg);
  return v;
}

/* One artifacts row as rs-llmspell's record. */
static int dump_artifact_row(const lls_artifact_rows *r, size_t i, lls_section_emit emit,
                             void *ud, lls_error *err) {
  const lls_artifact_row *row = &r->rows[i];
  lls_str id = lls_artifact_rows_get(r, i, LLS_ART_ID);
  lls_value *meta = json_value(lls_artifact_rows_get(r, i, LLS_ART_METADATA), id, err);
  if (meta == NULL) return -1;
  lls_value *tags = json_value(lls_artifact_rows_get(r, i, LLS_ART_TAGS), id, err);
  if (tags == NULL) {
    lls_value_free(meta);
    return -1;
  }
  lls_value *rec = lls_value_object();
  if (rec == NULL) {
    lls_value_free(meta);
    lls_value_free(tags);
    return lls_error_oom(err);
  }
  /* metadata and tags first: lls_value_set frees them when it fails */
  int rc = put(rec, "metadata", meta) || put(rec, "tags", tags) ||
           put(rec, "artifact_id", str_value(id)) ||
           put(rec, "artifact_type", str_value(lls_artifact_rows_get(r, i, LLS_ART_TYPE))) ||
           put(rec, "content_hash", str_value(lls_artifact_rows_get(r, i, LLS_ART_HASH))) ||
           put(rec, "created_at", lls_value_int(row->created_at)) ||
           put(rec, "created_by", str_value(lls_artifact_rows_get(r, i, LLS_ART_CREATED_BY))) ||
           put(rec, "mime_type", str_value(lls_artifact_rows_get(r, i, LLS_ART_MIME))) ||
           put(rec, "name", str_value(lls_artifact_rows_get(r, i, LLS_ART_NAME))) ||
           put(rec, "parent_artifact_id",
               str_value(lls_artifact_rows_get(r, i, LLS_ART_PARENT))) ||
           put(rec, "sequence", lls_value_int(row->sequence)) ||
           put(rec, "session_id", str_value(lls_artifact_rows_get(r, i, LLS_ART_SESSION))) ||
           put(rec, "size_bytes", lls_value_int(row->size_bytes)) ||
           put(rec, "stored_at", lls_value_int(row->stored_at)) ||
           put(rec, "tenant_id", str_value(lls_artifact_rows_get(r, i, LLS_ART_TENANT))) ||
           put(rec, "updated_at", lls_value_int(row->updated_at)) ||
           put(rec, "version", lls_value_int(row->version));
  if (rc != 0) {
    lls_value_free(rec);
    return lls_error_oom(err);
  }
  rc = emit(ud, rec, err);
  lls_value_free(rec);
  return rc;
}

static int dump_artifacts(lls_backend *cb, lls_section_emit emit, void *ud, int64_t *n,
                          lls_error *err) {
  lls_artifact_rows rows = {0};
  lls_buf after = {0};
  int rc = 0;
  for (;;) {
    lls_artifact_rows_reset(&rows);
    lls_str cursor = {after.data ? after.data : "", after.len};
    if ((rc = cb->vt->artifacts->dump_artifacts(cb, cursor, ARTIFACT_PAGE, &rows, err)) != 0) break;
    for (size_t i = 0; rc == 0 && i < rows.count; i++) {
      rc = dump_artifact_row(&rows, i, emit, ud, err);
      if (rc == 0) (*n)++;
    }
    if (rc != 0 || rows.count < ARTIFACT_PAGE) break;
    lls_str last = lls_artifact_rows_get(&rows, rows.count - 1, LLS_ART_ID);
    after.len = 0;
    if (lls_buf_append(&after, last.ptr, last.len) != 0) {
      rc = lls_error_oom(err);
      break;
    }
  }
  lls_artifact_rows_free(&rows);
  lls_buf_free(&after);
  return rc;
}

static int section_dump(lls_backend *cb, int part, int64_t now, lls_section_emit emit, void *ud,
                        int64_t *n, lls_error *err) {
  (void)now;
  *n = 0;
  return part == 0 ? dump_contents(cb, emit, ud, n, err) : dump_artifacts(cb, emit, ud, n, err);
}

/* ------------------------------------------------------- import records */

/* Field name of rec, NULL when absent or null. */
static const lls_value *field(const lls_value *rec, const char *name) {
  const lls_value *v = lls_value_get(rec, name, strlen(name));
  return v != NULL && v->type == LLS_VNULL ? NULL : v;
}

/* A format error about record `what` (its id when known). */
static int bad(lls_error *err, const char *part, lls_str id, const char *what) {
  if (id.ptr == NULL)
    return lls_error_set(err, LLS_EFORMAT, "artifacts.%s record: %s", part, what);
  return lls_error_set(err, LLS_EFORMAT, "artifacts.%s record '%.*s': %s", part,
                       (int)(id.len > 200 ? 200 : id.len), id.ptr, what);
}

/* Optional string field; ptr NULL when absent. -1 when not a string. */
static int rec_str(const lls_value *rec, const char *name, lls_str *out) {
  const lls_value *v = field(rec, name);
  *out = (lls_str){NULL, 0};
  if (v == NULL) return 0;
  if (v->type != LLS_VSTRING) return -1;
  *out = (lls_str){v->u.s.ptr, v->u.s.len};
  return 0;
}

/* Optional integer field (microseconds, counts); def when absent. A float
 * with an integral value is taken (JSON writers may add ".0"). */
static int rec_int(const lls_value *rec, const char *name, int64_t def, int64_t *out) {
  const lls_value *v = field(rec, name);
  *out = def;
  if (v == NULL) return 0;
  if (v->type == LLS_VINT) {
    *out = v->u.i;
    return 0;
  }
  if (v->type == LLS_VFLOAT && v->u.f < 9.2e18 && v->u.f > -9.2e18 &&
      v->u.f == (double)(int64_t)v->u.f) {
    *out = (int64_t)v->u.f;
    return 0;
  }
  return -1;
}

/* A content hash: 64 hex digits, kept lowercase in out. */
static int hash_ok(lls_str s, char out[LLS_SHA256_HEX]) {
  if (s.ptr == NULL || s.len != LLS_SHA256_HEX - 1) return 0;
  for (size_t i = 0; i < s.len; i++) {
    char c = s.ptr[i];
    if (c >= 'A' && c <= 'F') c = (char)(c - 'A' + 'a');
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return 0;
    out[i] = c;
  }
  out[s.len] = '\0';
  return 1;
}

/* rs-llmspell's compressed form: a 4-byte little-endian original size,
 * then one LZ4 block. */
static int unpack_compressed(const lls_buf *in, lls_buf *out) {
  if (in->len < 4) return -1;
  const unsigned char *p = (const unsigned char *)in->data;
  uint32_t raw = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                 (uint32_t)p[3] << 24;
  if (raw > LLS_LZ4_MAX_INPUT) return -1;
  out->len = 0;
  if (lls_buf_reserve(out, raw ? raw : 1) != 0) return -2;
  if (raw == 0) return in->len == 4 || (in->len == 5 && p[4] == 0) ? 0 : -1;
  if (lls_lz4_decompress(in->data + 4, in->len - 4, out->data, raw) != 0) return -1;
  out->len = raw;
  return 0;
}

static int load_content(lls_backend *cb, const lls_value *rec, lls_conflict on_conflict,
                        int64_t now, int *written, lls_error *err) {
  static const char *part = "content";
  lls_content_row c;
  memset(&c, 0, sizeof c);
  lls_str h, data, none = {NULL, 0};
  if (rec_str(rec, "content_hash", &h) != 0 || !hash_ok(h, c.hash))
    return bad(err, part, none, "content_hash must be a SHA-256: 64 hex digits");
  lls_str id = {c.hash, LLS_SHA256_HEX - 1};
  if (rec_str(rec, "data", &data) != 0) return bad(err, part, id, "data must be a string");
  if (data.ptr == NULL)
    return bad(err, part, id,
               "data is missing (content rs-llmspell kept as a large object is exported "
               "without its bytes)");
  const lls_value *z = field(rec, "is_compressed");
  if (z != NULL && z->type != LLS_VBOOL)
    return bad(err, part, id, "is_compressed must be true or false");
  if (rec_int(rec, "created_at", now, &c.created_at) != 0 ||
      rec_int(rec, "last_accessed_at", c.created_at, &c.last_accessed_at) != 0)
    return bad(err, part, id, "created_at and last_accessed_at must be integer microseconds");
  int64_t ignored;
  if (rec_int(rec, "reference_count", 0, &ignored) != 0 ||
      rec_int(rec, "size_bytes", 0, &ignored) != 0 ||
      rec_int(rec, "original_size_bytes", 0, &ignored) != 0)
    return bad(err, part, id, "reference_count and the sizes must be integers");
  lls_buf raw = {0}, plain = {0};
  const lls_buf *bytes = &raw;
  int rc = lls_b64_decode(&raw, data.ptr, data.len);
  if (rc == -1) {
    rc = bad(err, part, id, "data is not base64");
    goto done;
  }
  if (rc != 0) {
    rc = lls_error_oom(err);
    goto done;
  }
  if (z != NULL && z->u.b) {
    rc = unpack_compressed(&raw, &plain);
    if (rc != 0) {
      rc = rc == -2 ? lls_error_oom(err)
                    : bad(err, part, id, "data is not a size-prefixed LZ4 block"
                                         " (is_compressed is true)");
      goto done;
    }
    bytes = &plain;
  }
  char got[LLS_SHA256_HEX];
  const char *p = bytes->len ? bytes->data : "";
  if (lls_sha256_hex(p, bytes->len, got) != 0) {
    rc = lls_error_oom(err);
    goto done;
  }
  if (memcmp(got, c.hash, LLS_SHA256_HEX) != 0) {
    rc = bad(err, part, id, "content_hash is not the SHA-256 of data");
    goto done;
  }
  lls_artifact_src src;
  lls_artifact_src_mem(&src, p, bytes->len, c.hash);
  if (cb == NULL) *written = 1; /* a dry run: checked only */
  else rc = cb->vt->artifacts->load_content(cb, &c, &src, on_conflict, now, written, err);
  lls_artifact_src_free(&src);
done:
  lls_buf_free(&raw);
  lls_buf_free(&plain);
  return rc;
}

/* Sets text field f of row from record field name (NULL when absent):
 * a string of 1..max bytes of UTF-8, or def when absent (ptr NULL: none). */
static int take_text(lls_artifact_rows *r, lls_artifact_row *row, int f, const lls_value *rec,
                     const char *name, size_t max, lls_str def, lls_str id, lls_error *err) {
  lls_str s;
  char what[96];
  if (rec_str(rec, name, &s) != 0) {
    snprintf(what, sizeof what, "%s must be a string", name);
    return bad(err, "artifacts", id, what);
  }
  if (s.ptr == NULL) s = def;
  if (s.ptr != NULL && !lls_text_ok(s, 1, max)) {
    snprintf(what, sizeof what, "%s must be 1..%zu bytes of UTF-8 text without NUL bytes",
             name, max);
    return bad(err, "artifacts", id, what);
  }
  if (lls_artifact_rows_set(r, row, f, s.ptr, s.len) != 0) return lls_error_oom(err);
  return 0;
}

/* Sets JSON field f of row from record field name (def when absent). */
static int take_json(lls_artifact_rows *r, lls_artifact_row *row, int f, const lls_value *v,
                     const char *def, lls_buf *tmp, lls_str id, lls_error *err) {
  char msg[160];
  tmp->len = 0;
  if (v == NULL) {
    if (lls_buf_append(tmp, def, strlen(def)) != 0) return lls_error_oom(err);
  } else if (lls_json_encode(v, tmp, msg, sizeof msg) != 0) {
    return bad(err, "artifacts", id, msg);
  }
  if (lls_artifact_rows_set(r, row, f, tmp->data, tmp->len) != 0) return lls_error_oom(err);
  return 0;
}

/* Checks an artifacts record into row 0 of r. */
static int read_artifact(const lls_value *rec, int64_t now, lls_artifact_rows *r, lls_buf *tmp,
                         lls_error *err) {
  static const char *part = "artifacts";
  lls_str none = {NULL, 0}, id;
  if (rec_str(rec, "artifact_id", &id) != 0 || id.ptr == NULL ||
      !lls_text_ok(id, 1, LLS_MAX_ARTIFACT_ID))
    return bad(err, part, none, "artifact_id must be a string of 1..598 bytes of UTF-8 text"
                                " without NUL bytes");
  lls_artifact_row *row = lls_artifact_rows_add(r);
  if (row == NULL || lls_artifact_rows_set(r, row, LLS_ART_ID, id.ptr, id.len) != 0)
    return lls_error_oom(err);
  lls_str h;
  char hash[LLS_SHA256_HEX];
  if (rec_str(rec, "content_hash", &h) != 0 || !hash_ok(h, hash))
    return bad(err, part, id, "content_hash must be a SHA-256: 64 hex digits");
  if (lls_artifact_rows_set(r, row, LLS_ART_HASH, hash, LLS_SHA256_HEX - 1) != 0)
    return lls_error_oom(err);
  lls_str type;
  if (rec_str(rec, "artifact_type", &type) != 0 || (type.ptr != NULL && !lls_artifact_type_ok(type)))
    return bad(err, part, id, "artifact_type must be one of " LLS_ARTIFACT_TYPES);
  if (type.ptr == NULL) type = (lls_str){"binary", 6};
  if (lls_artifact_rows_set(r, row, LLS_ART_TYPE, type.ptr, type.len) != 0)
    return lls_error_oom(err);
  if (take_text(r, row, LLS_ART_SESSION, rec, "session_id", LLS_MAX_ID, none, id, err) ||
      take_text(r, row, LLS_ART_NAME, rec, "name", LLS_MAX_ARTIFACT_NAME,
                (lls_str){"unnamed", 7}, id, err) ||
      take_text(r, row, LLS_ART_MIME, rec, "mime_type", LLS_MAX_NAME,
                (lls_str){"application/octet-stream", 24}, id, err) ||
      take_text(r, row, LLS_ART_CREATED_BY, rec, "created_by", LLS_MAX_ID, none, id, err) ||
      take_text(r, row, LLS_ART_PARENT, rec, "parent_artifact_id", LLS_MAX_ARTIFACT_ID, none, id,
                err))
    return -1;
  if (lls_artifact_rows_get(r, 0, LLS_ART_SESSION).ptr == NULL)
    return bad(err, part, id, "session_id is missing");
  const lls_value *tags = field(rec, "tags");
  if (tags != NULL) {
    int ok = tags->type == LLS_VARRAY;
    for (size_t k = 0; ok && k < tags->u.a.n; k++)
      ok = tags->u.a.items[k]->type == LLS_VSTRING;
    if (!ok) return bad(err, part, id, "tags must be an array of strings");
  }
  if (take_json(r, row, LLS_ART_METADATA, field(rec, "metadata"), "{}", tmp, id, err) ||
      take_json(r, row, LLS_ART_TAGS, tags, "[]", tmp, id, err))
    return -1;
  row = &r->rows[0];
  if (rec_int(rec, "sequence", -1, &row->sequence) != 0 || row->sequence < 0)
    return bad(err, part, id, "sequence must be a non-negative integer");
  if (rec_int(rec, "size_bytes", -1, &row->size_bytes) != 0 || row->size_bytes < 0)
    return bad(err, part, id, "size_bytes must be a non-negative integer");
  if (rec_int(rec, "version", 1, &row->version) != 0 || row->version < 1 ||
      row->version > 2147483647)
    return bad(err, part, id, "version must be a positive integer");
  if (rec_int(rec, "created_at", now, &row->created_at) != 0 ||
      rec_int(rec, "stored_at", row->created_at, &row->stored_at) != 0 ||
      rec_int(rec, "updated_at", row->stored_at, &row->updated_at) != 0)
    return bad(err, part, id, "created_at, stored_at and updated_at must be integer microseconds");
  return 0;
}

static int section_load(lls_backend *cb, int part, const lls_value *rec, lls_conflict on_conflict,
                        int64_t now, int *written, lls_error *err) {
  *written = 0;
  if (rec->type != LLS_VOBJECT)
    return lls_error_set(err, LLS_EFORMAT, "artifacts.%s record is not an object",
                         part == 0 ? "content" : "artifacts");
  if (part == 0) return load_content(cb, rec, on_conflict, now, written, err);
  lls_artifact_rows r = {0};
  lls_buf tmp = {0};
  int rc = read_artifact(rec, now, &r, &tmp, err);
  if (rc == 0 && cb == NULL) *written = 1; /* a dry run: checked only */
  else if (rc == 0) rc = cb->vt->artifacts->load_artifact(cb, &r, 0, on_conflict, now, written, err);
  lls_artifact_rows_free(&r);
  lls_buf_free(&tmp);
  return rc;
}

/* Records of the section: contents and artifacts. */
static int section_count(lls_backend *cb, int64_t now, int64_t *n, lls_error *err) {
  (void)now;
  lls_artifact_stats st;
  lls_str tenant_wide = {NULL, 0};
  if (cb->vt->artifacts->stats(cb, tenant_wide, &st, err) != 0) return -1;
  *n = st.artifacts + st.unique_contents;
  return 0;
}

/* Records of one part: distinct contents (0) or artifacts (1). */
static int section_count_part(lls_backend *cb, int part, int64_t now, int64_t *n,
                              lls_error *err) {
  (void)now;
  lls_artifact_stats st;
  lls_str tenant_wide = {NULL, 0};
  if (cb->vt->artifacts->stats(cb, tenant_wide, &st, err) != 0) return -1;
  *n = part == 0 ? st.unique_contents : st.artifacts;
  return 0;
}

static const char *const PARTS[] = {"content", "artifacts", NULL};

const lls_section_codec lls_artifacts_section = {"artifacts",   PARTS,         section_dump,
                                                  section_load,  section_count, section_count_part};
