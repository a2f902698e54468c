/*
 * import_feed.c -- the stream side of an import (import_feed.h).
 *
 * Every chunk goes through the lexical pass of value/json_scan.h before
 * yajl sees it, for three reasons:
 *
 *   - strictness: what yajl lets through (form feed and vertical tab as
 *     whitespace, overlong UTF-8, a lone surrogate escape) is refused with
 *     the byte it sits at; yajl is fed up to that byte first, so its own
 *     error wins when it comes earlier;
 *   - linear time: yajl re-reads a token that spans chunks from its start
 *     on every chunk (its lexer buffers the token and re-lexes the buffer),
 *     so a 64 MB string cost some 500 re-reads of up to 64 MB. A token
 *     still open at the end of a chunk is held back here (copied, or for
 *     from_string a slice of the text) and handed to yajl whole once the
 *     scan sees it end;
 *   - bounded memory for big values: the string value of a kv record's
 *     "value" and of a vector's "embedding" (unless it is pgvector text,
 *     "[...") is captured -- decoded from base64 as it streams, straight
 *     into the batch arena (or storage.records' buffer, or the floats) --
 *     and yajl gets `null` in its place; the record's checks then take the
 *     decoded bytes (have_value / have_floats). A 64 MB value is then held
 *     once, as its bytes, instead of as JSON text, yajl's copy of it, the
 *     builder's copy and the decoded bytes.
 *
 * Offsets: j->read_off counts the input read, j->offset what went to yajl
 * (or to a capture); messages give 1-based byte positions as the
 * scanner's and yajl's own did before.
 */
#include <stdio.h>
#include <string.h>

#include <lauxlib.h>

#include "lua/error.h"
#include "lua/import_feed.h"
#include "lua/import_parse.h"

/* The member keys whose string values may be captured (json_scan.h). */
static const char *const WATCHED[] = {"value", "embedding", NULL};
enum { W_VALUE, W_EMBEDDING };

enum { CAP_NONE, CAP_VALUE, CAP_EMB };

void lls_import_feed_init(lls_ijob *j) { lls_jscan_init(&j->scan, WATCHED); }

static int raise_syntax(lua_State *L, lls_ijob *j, const unsigned char *buf, size_t n,
                        uint64_t at) {
  unsigned char *m = yajl_get_error(j->y, 0, buf, n);
  const char *s = m != NULL ? (const char *)m : "malformed";
  size_t len = strlen(s);
  while (len > 0 && (s[len - 1] == '\n' || s[len - 1] == ' ' || s[len - 1] == '.')) len--;
  char msg[300];
  snprintf(msg, sizeof msg, "invalid JSON at byte %llu: %.*s", (unsigned long long)at, (int)len,
           s);
  if (m != NULL) yajl_free_error(j->y, m);
  return lls_raisef(L, lls_ijob_backend(j), LLS_EFORMAT, "%s", msg);
}

/* Hands p[0..n), at offset `at` of the stream, to yajl; raises the run's
 * failure or yajl's syntax error. */
static void yfeed(lua_State *L, lls_ijob *j, const unsigned char *p, size_t n, uint64_t at) {
  if (n == 0) return;
  /* numbers are read in the "C" locale whatever the host set */
  locale_t old = j->cloc != (locale_t)0 ? uselocale(j->cloc) : (locale_t)0;
  yajl_status st = yajl_parse(j->y, p, n);
  if (old != (locale_t)0) uselocale(old);
  if (st != yajl_status_ok) {
    uint64_t e = at + yajl_get_bytes_consumed(j->y);
    if (j->failed) lls_import_raise(L, j, e);
    raise_syntax(L, j, p, n, e);
  }
  j->offset = at + n;
}

/* Adds n bytes at offset `at` to the held-back token. */
static void hold_add(lua_State *L, lls_ijob *j, const unsigned char *p, size_t n, uint64_t at) {
  if (j->hold_n == 0) j->hold_at = at;
  if (j->text != NULL) { /* from_string: chunks are consecutive slices of one text */
    if (j->hold_n == 0) j->hold_p = p;
    j->hold_n += n;
    return;
  }
  if (lls_buf_append(&j->held, p, n) != 0) luaL_error(L, "out of memory");
  j->hold_p = (const unsigned char *)j->held.data;
  j->hold_n = j->held.len;
}

static void hold_drop(lls_ijob *j) {
  j->hold_n = 0;
  j->held.len = 0;
  if (j->held.cap > ((size_t)1 << 20)) lls_buf_free(&j->held); /* a big token passed */
}

/* Hands yajl what comes before buf[pos]: the held token with the start of
 * this chunk, or buf[fed..pos). */
static void feed_to(lua_State *L, lls_ijob *j, const unsigned char *buf, size_t fed, size_t pos,
                    uint64_t base) {
  if (j->hold_n == 0) {
    yfeed(L, j, buf + fed, pos - fed, base + fed);
    return;
  }
  hold_add(L, j, buf, pos, base);
  uint64_t at = j->hold_at;
  size_t n = j->hold_n;
  const unsigned char *p = j->hold_p;
  j->hold_n = 0; /* before yfeed, which may raise */
  yfeed(L, j, p, n, at);
  hold_drop(j);
}

/* ------------------------------------------------------------- captures */

static int cap_sink(void *ud, const unsigned char *p, size_t n) {
  lls_ijob *j = ud;
  /* text that is not base64 marks the decoder; only memory stops the scan */
  return lls_b64_dec_feed(&j->dec, j->cap_out, (const char *)p, n) == -2 ? -1 : 0;
}

/* At the string value of a watched key, yajl having read all before it:
 * captured when it is the "value" of a kv record or the "embedding" of a
 * vector (pgvector text, starting with '[', stays a string). */
static void keyed_string(lls_ijob *j) {
  j->cap_kind = CAP_NONE;
  if (j->failed || j->skipping || !j->in_rec) return;
  if (j->scan.which == W_VALUE && j->rk == R_KV && j->val_next)
    j->cap_kind = CAP_VALUE;
  else if (j->scan.which == W_EMBEDDING && j->rk == R_VEC && j->em == EMB_NEXT)
    j->cap_kind = CAP_EMB;
  else
    return;
  lls_jscan_capture(&j->scan, cap_sink, j, j->cap_kind == CAP_EMB ? '[' : 0);
}

static void capture_start(lls_ijob *j) {
  lls_b64_dec_init(&j->dec);
  j->cap_at = j->scan.tok_start;
  if (j->cap_kind == CAP_VALUE) {
    j->cap_out = lls_ijob_value_buf(j);
    j->val_off = j->cap_out->len;
  } else {
    j->cap_out = &j->floats;
    j->floats.len = 0;
  }
}

/* The captured string ended at offset end: its outcome for the record,
 * and a null for yajl in its place. */
static void capture_end(lua_State *L, lls_ijob *j, uint64_t end) {
  int ok = lls_b64_dec_end(&j->dec) == 0;
  if (j->cap_kind == CAP_VALUE) {
    j->have_value = 1;
    j->val_bad = !ok;
    if (!ok) j->cap_out->len = j->val_off;
  } else {
    j->have_floats = 1;
    j->emb_b64 = 1;
    j->emb_bad = !ok;
  }
  j->cap_kind = CAP_NONE;
  j->cap_out = NULL;
  yfeed(L, j, (const unsigned char *)"null", 4, j->cap_at);
  j->offset = end;
}

/* ------------------------------------------------------------- feeding */

static void scan_error(lua_State *L, lls_ijob *j, const unsigned char *buf, size_t fed,
                       size_t pos, uint64_t base) {
  if (j->scan.sink_failed) luaL_error(L, "out of memory");
  /* yajl first: its own error wins when it comes earlier */
  if (!lls_jscan_capturing(&j->scan)) feed_to(L, j, buf, fed, pos, base);
  lls_raisef(L, lls_ijob_backend(j), LLS_EFORMAT, "invalid JSON at byte %llu: %s",
             (unsigned long long)j->scan.err_at + 1, j->scan.err);
}

void lls_import_feed(lua_State *L, lls_ijob *j, const unsigned char *buf, size_t n) {
  lls_jscan *s = &j->scan;
  uint64_t base = j->read_off;
  size_t pos = 0, fed = 0; /* buf[0..fed) has gone to yajl, the held token or a capture */
  for (;;) {
    lls_jscan_ev ev = lls_jscan_run(s, buf, n, base, &pos);
    if (ev == LLS_JSCAN_END) break;
    switch (ev) {
    case LLS_JSCAN_ERROR: scan_error(L, j, buf, fed, pos, base); break;
    case LLS_JSCAN_TOKEN_END: feed_to(L, j, buf, fed, pos, base); break;
    case LLS_JSCAN_KEYED_STRING:
      feed_to(L, j, buf, fed, pos, base);
      keyed_string(j);
      break;
    case LLS_JSCAN_CAPTURE_START: /* the opening quote is not yajl's */
      hold_drop(j);
      capture_start(j);
      break;
    case LLS_JSCAN_CAPTURE_END: capture_end(L, j, base + pos); break;
    case LLS_JSCAN_END: break;
    }
    fed = pos;
  }
  if (lls_jscan_capturing(s)) { /* the rest of the chunk was the capture's */
    j->offset = base + n;
  } else if (s->hold) { /* a token goes on in the next chunk: yajl gets it whole */
    size_t from = s->tok_start >= base + fed ? (size_t)(s->tok_start - base) : fed;
    yfeed(L, j, buf + fed, from - fed, base + fed);
    hold_add(L, j, buf + from, n - from, base + from);
    s->watch_end = 1;
  } else {
    yfeed(L, j, buf + fed, n - fed, base + fed);
  }
  j->read_off += n;
  j->st.bytes = (int64_t)j->read_off;
}

void lls_import_feed_end(lua_State *L, lls_ijob *j) {
  char msg[64];
  snprintf(msg, sizeof msg, "%llu", (unsigned long long)j->read_off);
  if (lls_jscan_capturing(&j->scan))
    lls_raisef(L, lls_ijob_backend(j), LLS_EFORMAT, "invalid JSON at byte %s: the input ends inside the document "
               "(truncated?)", msg);
  if (j->hold_n > 0) feed_to(L, j, NULL, 0, 0, j->read_off); /* a token at the very end */
  locale_t old = j->cloc != (locale_t)0 ? uselocale(j->cloc) : (locale_t)0;
  yajl_status st = yajl_complete_parse(j->y);
  if (old != (locale_t)0) uselocale(old);
  if (st != yajl_status_ok) {
    if (j->failed) lls_import_raise(L, j, j->read_off);
    lls_raisef(L, lls_ijob_backend(j), LLS_EFORMAT, "invalid JSON at byte %s: the input ends inside the document "
               "(truncated?)", msg);
  }
  if (j->ps != P_END) /* an empty input */
    lls_raisef(L, lls_ijob_backend(j), LLS_EFORMAT, "invalid JSON at byte 0: empty input");
  if (!j->version_seen)
    lls_raisef(L, lls_ijob_backend(j), LLS_EVERSION, "the document has no \"version\" (not an export file?)");
}
