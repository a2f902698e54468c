/*
 * test_json_scan.c -- the strict lexical pass (csrc/value/json_scan.c) on
 * its own: events, captures and errors are the same however the text is
 * cut into pieces (every two-piece cut, and one byte at a time); errors
 * name the right byte; open tokens are reported with their start.
 */
#include <string.h>

#include "base/buf.h"
#include "check.h"
#include "value/json_scan.h"

static const char *const KEYS[] = {"value", "embedding", NULL};

/* What a scan saw, as text: one line per event, captures with their
 * content, and the error (offset and message). */
typedef struct seen {
  lls_buf log;
} seen;

static void logf_(seen *w, const char *fmt, unsigned long long a, const char *b) {
  char line[200];
  int n = snprintf(line, sizeof line, fmt, a, b);
  lls_buf_append(&w->log, line, (size_t)n);
}

static int sink(void *ud, const unsigned char *p, size_t n) {
  lls_buf_append(&((seen *)ud)->log, p, n);
  return 0;
}

/* Scans text cut at the offsets in cuts[0..ncuts) (increasing); every
 * watched string is captured, an embedding unless it starts with '['. */
static void scan_cut(const char *text, size_t len, const size_t *cuts, size_t ncuts, seen *w) {
  lls_jscan s;
  lls_jscan_init(&s, KEYS);
  w->log.len = 0;
  size_t start = 0;
  for (size_t c = 0; c <= ncuts; c++) {
    size_t end = c < ncuts ? cuts[c] : len;
    const unsigned char *p = (const unsigned char *)text + start;
    size_t pos = 0;
    for (;;) {
      lls_jscan_ev ev = lls_jscan_run(&s, p, end - start, start, &pos);
      if (ev == LLS_JSCAN_END) break;
      if (ev == LLS_JSCAN_ERROR) {
        logf_(w, "error at %llu: %s\n", (unsigned long long)s.err_at, s.err);
        return;
      }
      if (ev == LLS_JSCAN_KEYED_STRING) {
        logf_(w, "keyed %llu %s\n", start + pos, KEYS[s.which]);
        lls_jscan_capture(&s, sink, w, s.which == 1 ? '[' : 0);
      } else if (ev == LLS_JSCAN_CAPTURE_START) {
        logf_(w, "capture %llu%s[", start + pos, "");
      } else if (ev == LLS_JSCAN_CAPTURE_END) {
        logf_(w, "] ends %llu%s\n", start + pos, "");
      }
    }
    start = end;
  }
  logf_(w, "end hold=%llu%s\n", (unsigned long long)s.hold, "");
}

/* The same log whatever the cuts: whole, every single cut, bytes. */
static void same_everywhere(const char *text, const char *want) {
  size_t len = strlen(text);
  seen whole = {{0}}, cut = {{0}};
  scan_cut(text, len, NULL, 0, &whole);
  lls_buf_append(&whole.log, "", 1);
  CHECK(want == NULL || strcmp(whole.log.data, want) == 0, "%s\n  gave: %s\n  want: %s", text,
        whole.log.data, want);
  whole.log.len--;
  for (size_t at = 1; at < len; at++) {
    scan_cut(text, len, &at, 1, &cut);
    CHECK(cut.log.len == whole.log.len && memcmp(cut.log.data, whole.log.data, cut.log.len) == 0,
          "%s cut at %zu: %.*s", text, at, (int)cut.log.len, cut.log.data);
  }
  size_t *bytes = malloc((len + 1) * sizeof *bytes);
  for (size_t i = 0; i + 1 < len; i++) bytes[i] = i + 1;
  scan_cut(text, len, bytes, len > 0 ? len - 1 : 0, &cut);
  CHECK(cut.log.len == whole.log.len && memcmp(cut.log.data, whole.log.data, cut.log.len) == 0,
        "%s byte by byte: %.*s", text, (int)cut.log.len, cut.log.data);
  free(bytes);
  lls_buf_free(&whole.log);
  lls_buf_free(&cut.log);
}

static void test_captures(void) {
  same_everywhere("{\"value\":\"QUJD\\/\\u0041\",\"x\":1}",
                  "keyed 9 value\ncapture 10[QUJD/A] ends 23\nend hold=0\n");
  /* pgvector text declines the capture; a later embedding is captured */
  same_everywhere("{\"embedding\":\"[1,2]\", \"embedding\" : \"AA==\"}",
                  "keyed 13 embedding\nkeyed 36 embedding\ncapture 37[AA==] ends 42\n"
                  "end hold=0\n");
  /* escapes arrive as the UTF-8 they stand for */
  same_everywhere("{\"value\":\"\\u00e9\\ud83d\\ude00\\n\\\"\xc3\xa9\"}",
                  "keyed 9 value\ncapture 10[\xc3\xa9\xf0\x9f\x98\x80\n\"\xc3\xa9] ends 35\n"
                  "end hold=0\n");
  same_everywhere("[\"value\",\"x\",{\"valu\\u0065\":\"y\",\"values\":\"z\",\"value\":5}]",
                  "end hold=0\n");
  same_everywhere("{\"value\":\"\"}", "keyed 9 value\ncapture 10[] ends 11\nend hold=0\n");
  same_everywhere("{\"a\":{\"value\":\"x\"}}", "keyed 14 value\ncapture 15[x] ends 17\n"
                  "end hold=0\n");
}

static void test_errors(void) {
  same_everywhere("[1,\f2]", "error at 3: a form feed outside a string (JSON whitespace is "
                  "space, tab, LF and CR)\n");
  same_everywhere("\v", "error at 0: a vertical tab outside a string (JSON whitespace is "
                  "space, tab, LF and CR)\n");
  same_everywhere("[\"\\f\\u000b\", \" \t\"]", "error at 15: a control character inside a "
                  "string (it must be escaped)\n");
  same_everywhere("[\"ab\\ud800\\u0041\"]", "error at 4: unpaired UTF-16 surrogate in \\u "
                  "escape\n");
  same_everywhere("[\"\\udc00\"]", "error at 2: unpaired UTF-16 surrogate in \\u escape\n");
  same_everywhere("[\"\\ud800x\"]", "error at 2: unpaired UTF-16 surrogate in \\u escape\n");
  same_everywhere("[\"\\x\"]", "error at 3: an invalid escape in a string\n");
  same_everywhere("[\"\\u12g4\"]", "error at 6: \\u must be followed by four hex digits\n");
  same_everywhere("[\"\xc0\xaf\"]", "error at 2: invalid UTF-8 in a string\n");
  same_everywhere("[\"\xed\xa0\x80\"]", "error at 3: invalid UTF-8 in a string\n");
  same_everywhere("[\"\xf4\x90\x80\x80\"]", "error at 3: invalid UTF-8 in a string\n");
  same_everywhere("[\"\xe4\xb8\"]", "error at 4: invalid UTF-8 in a string\n");
  same_everywhere("{\"value\":\"AA\xff\"}", "keyed 9 value\ncapture 10[AAerror at 12: invalid "
                  "UTF-8 in a string\n");
  same_everywhere("{\"value\":\"A\x01\"}", "keyed 9 value\ncapture 10[Aerror at 11: a control "
                  "character inside a string (it must be escaped)\n");
  /* what is fine */
  same_everywhere(" \t\r\n{\"a\" : [1, -2.5e3, true, null, \"\\\\ud800\", "
                  "\"\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf\\u00e9\\uD83D\\uDE00\"]}\r\n", "end hold=0\n");
}

/* At the end of a piece: is a token open, and from where? */
static void open_at(const char *text, int hold, unsigned long long start) {
  lls_jscan s;
  lls_jscan_init(&s, NULL);
  size_t pos = 0;
  CHECK(lls_jscan_run(&s, (const unsigned char *)text, strlen(text), 100, &pos) ==
            LLS_JSCAN_END, "%s scans", text);
  CHECK(s.hold == hold && (!hold || s.tok_start == start), "%s: hold %d from %llu", text,
        s.hold, (unsigned long long)s.tok_start);
}

static void test_tokens(void) {
  open_at("[1, \"abc", 1, 104);
  open_at("[1, \"abc\\", 1, 104);
  open_at("[1, \"a\\ud83d", 1, 104);
  open_at("[1, 234", 1, 104);
  open_at("[1, tr", 1, 104);
  open_at("[1, \"abc\"", 0, 0);
  open_at("[1, 2 ", 0, 0);
  open_at("[1, 2,", 0, 0);
  /* the end of a held token is reported when asked for */
  lls_jscan s;
  lls_jscan_init(&s, NULL);
  size_t pos = 0;
  lls_jscan_run(&s, (const unsigned char *)"[\"ab", 4, 0, &pos);
  s.watch_end = 1;
  pos = 0;
  CHECK(lls_jscan_run(&s, (const unsigned char *)"c\",12,3]", 8, 4, &pos) ==
            LLS_JSCAN_TOKEN_END && pos == 2, "string end at %zu", pos);
  CHECK(lls_jscan_run(&s, (const unsigned char *)"c\",12,3]", 8, 4, &pos) == LLS_JSCAN_END,
        "no more events");
  lls_jscan_run(&s, (const unsigned char *)"[12", 3, 12, &(size_t){0});
  s.watch_end = 1;
  pos = 0;
  CHECK(lls_jscan_run(&s, (const unsigned char *)"34]", 3, 15, &pos) == LLS_JSCAN_TOKEN_END &&
            pos == 2, "number end at %zu", pos);
}

int main(void) {
  test_captures();
  test_errors();
  test_tokens();
  printf("ok: %d checks passed\n", g_checks);
  return 0;
}
