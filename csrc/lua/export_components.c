/*
 * export_components.c -- the components' sections of an export document
 * (export_components.h). Each codec reads its rows page by page and hands
 * them over one record at a time; a record is written as canonical JSON
 * at once, so memory holds one page and one record.
 */
#include "lua/export_components.h"

#include <string.h>

#include "base/clock.h"
#include "lua/error.h"
#include "lua/sections.h"
#include "value/json.h"

/* lls_section_emit for the exporter: one record into the document. No Lua
 * here (a raise would cut through the codec's open statement): progress
 * is reported between sections. */
static int emit(void *ud, const lls_value *rec, lls_error *err) {
  lls_xjob *j = ud;
  char msg[200];
  j->rec.len = 0;
  if (lls_json_encode(rec, &j->rec, msg, sizeof msg) != 0)
    return lls_error_set(err, LLS_EFORMAT, "component record: %s", msg);
  g_raw(j, j->rec.data, j->rec.len);
  j->done++;
  return lls_xjob_error(j, err);
}

/* The backend holding h's components; raises when it cannot be had. */
static lls_backend *components_of(lua_State *L, lls_handle *h) {
  lls_error err;
  lls_backend *cb = lls_backend_components(h->b, &err);
  if (cb == NULL) lls_raise(L, &err, h->vt->name);
  return cb;
}

/* A store that imported an rs-llmspell file before the component existed
 * kept its section as passthrough records (export_sections). They are
 * written after the component's own rows, inside the same array, so
 * nothing is lost and the next import puts them in the component's
 * tables. part: the member to take from a section kept as one object
 * (artifacts), NULL for an array section. */
static int64_t write_kept(lua_State *L, lls_xjob *j, lls_handle *h, const char *name,
                          const char *part) {
  if (h->vt->xport->sec_dump == NULL) return 0;
  lls_str want = {name, strlen(name)};
  lls_str after = want;
  int64_t after_ord = INT64_MIN, n = 0;
  for (;;) {
    lls_error err;
    lls_rows_reset(&j->rows);
    if (h->vt->xport->sec_dump(h->b, after, after_ord, LLS_EXPORT_PAGE, &j->rows, &err) != 0)
      lls_raise(L, &err, h->vt->name);
    size_t rows = j->rows.count, i = 0;
    for (; i < rows; i++) {
      lls_str k = lls_row_key(&j->rows, i), json = lls_row_value(&j->rows, i);
      if (k.len != want.len || memcmp(k.ptr, want.ptr, want.len) != 0) break;
      int64_t ord = j->rows.rows[i].created_at;
      after_ord = ord;
      if ((ord < 0) != (part != NULL)) continue;
      if (part == NULL) {
        if (lls_xjob_json(j, json, name, NULL, &err) != 0) lls_raise(L, &err, h->vt->name);
        n++;
        continue;
      }
      lls_value *v = NULL;
      char msg[200];
      if ((v = lls_json_decode(json.ptr, json.len, msg, sizeof msg)) == NULL)
        lls_raisef(L, h->vt->name, LLS_EFORMAT, "%s: stored JSON is invalid: %s", name, msg);
      const lls_value *a = v->type == LLS_VOBJECT ? lls_value_get(v, part, strlen(part)) : NULL;
      for (size_t e = 0; a != NULL && a->type == LLS_VARRAY && e < a->u.a.n; e++) {
        if (emit(j, a->u.a.items[e], &err) != 0) {
          lls_value_free(v);
          lls_raise(L, &err, h->vt->name);
        }
        j->done--; /* counted below with the rest */
        n++;
      }
      lls_value_free(v);
    }
    if (i < rows || rows < LLS_EXPORT_PAGE) break;
  }
  j->done += n;
  return n;
}

/* One array of records: part p of codec c, then what passthrough kept. */
static int64_t write_part(lua_State *L, lls_xjob *j, lls_handle *h, lls_backend *cb,
                          const lls_section_codec *c, int p, int64_t now) {
  lls_error err;
  int64_t n = 0;
  gs(j, yajl_gen_array_open(j->g));
  if (c->dump(cb, p, now, emit, j, &n, &err) != 0) lls_raise(L, &err, h->vt->name);
  n += write_kept(L, j, h, c->name, c->parts != NULL ? c->parts[p] : NULL);
  gs(j, yajl_gen_array_close(j->g));
  lls_xjob_check(L, j);
  return n;
}

/* Whether the store kept passthrough records under name (write_kept). */
static int has_kept(lua_State *L, lls_xjob *j, lls_handle *h, const char *name) {
  if (h->vt->xport->sec_dump == NULL) return 0;
  lls_str want = {name, strlen(name)};
  lls_error err;
  lls_rows_reset(&j->rows);
  if (h->vt->xport->sec_dump(h->b, want, INT64_MIN, 1, &j->rows, &err) != 0)
    lls_raise(L, &err, h->vt->name);
  if (j->rows.count == 0) return 0;
  lls_str k = lls_row_key(&j->rows, 0);
  return k.len == want.len && memcmp(k.ptr, want.ptr, want.len) == 0;
}

void lls_export_components(lua_State *L, lls_xjob *j, lls_handle *h) {
  lls_backend *cb = components_of(L, h);
  int64_t now = lls_now_us();
  for (size_t i = 0; lls_section_codecs[i] != NULL; i++) {
    const lls_section_codec *c = lls_section_codecs[i];
    lls_str name = {c->name, strlen(c->name)};
    if (!lls_xjob_wants(L, j, name.ptr, name.len)) continue;
    /* a component the store does not use writes no section: an export of
     * keys and vectors only stays what it was */
    lls_error err;
    int64_t have = 0;
    if (c->count(cb, now, &have, &err) != 0) lls_raise(L, &err, h->vt->name);
    if (have == 0 && !has_kept(L, j, h, c->name)) continue;
    g_str(j, name.ptr, name.len);
    int64_t total = 0;
    if (c->parts == NULL) {
      total = write_part(L, j, h, cb, c, 0, now);
    } else {
      gs(j, yajl_gen_map_open(j->g));
      for (int p = 0; c->parts[p] != NULL; p++) {
        g_key(j, c->parts[p]);
        int64_t n = write_part(L, j, h, cb, c, p, now);
        lls_xstats_part(&j->st, name, c->parts[p], n);
        total += n;
      }
      gs(j, yajl_gen_map_close(j->g));
    }
    if (lls_xstats_add(&j->st, name, total) != 0) j->oom = 1;
    lls_xjob_check(L, j);
    lls_xjob_report(L, j, c->name, 0);
    lls_xjob_still_open(L, h);
  }
}

int64_t lls_export_count_components(lua_State *L, const lls_xjob *j, lls_handle *h) {
  lls_backend *cb = components_of(L, h);
  int64_t total = 0, now = lls_now_us();
  for (size_t i = 0; lls_section_codecs[i] != NULL; i++) {
    const char *name = lls_section_codecs[i]->name;
    if (!lls_xjob_wants(L, j, name, strlen(name))) continue;
    lls_error err;
    int64_t n = 0;
    if (lls_section_codecs[i]->count(cb, now, &n, &err) != 0) lls_raise(L, &err, h->vt->name);
    total += n;
  }
  return total;
}
