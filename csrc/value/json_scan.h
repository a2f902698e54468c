/*
 * json_scan.h -- a lexical pass over JSON text, whole or streamed in
 * pieces, that runs beside yajl and adds what yajl lets through or does
 * slowly:
 *
 *   - strictness (RFC 8259): whitespace between tokens is space, tab, LF
 *     and CR only (yajl also takes form feed and vertical tab); strings
 *     are strict UTF-8 (no overlongs, surrogates or code points past
 *     U+10FFFF); \u escapes of UTF-16 surrogates come in pairs (yajl turns
 *     a lone one into '?' and pairs a high one with any next escape);
 *   - token boundaries: `hold` says a string or bare token (number,
 *     literal) is open at the end of a piece, from `tok_start`, so a caller
 *     can hand yajl that token whole once it ends (yajl re-reads a token
 *     that spans pieces from its start on every piece: quadratic);
 *   - capture: the content of a member's string value whose key the caller
 *     watches can go to a sink instead (unescaped, in pieces), so a long
 *     value never has to sit whole in memory as JSON text.
 *
 * The scanner only looks at lexical structure; yajl still parses. A byte
 * the scanner takes that yajl refuses (a stray character, say) is left to
 * yajl, which sees it first when the caller feeds yajl up to each event.
 */
#ifndef LLS_VALUE_JSON_SCAN_H
#define LLS_VALUE_JSON_SCAN_H

#include <stddef.h>
#include <stdint.h>

/* What lls_jscan_run stopped at. */
typedef enum lls_jscan_ev {
  LLS_JSCAN_END,           /* the piece is scanned (*pos == n) */
  LLS_JSCAN_ERROR,         /* the text is not JSON: err_at, err */
  LLS_JSCAN_KEYED_STRING,  /* *pos is the opening quote of the value of a
                              watched key (keys[which]); the quote is taken
                              when the run resumes, after the caller may
                              have asked for a capture */
  LLS_JSCAN_TOKEN_END,     /* watch_end was set and the token open since
                              tok_start ended just before *pos */
  LLS_JSCAN_CAPTURE_START, /* a capture began: *pos is its first content
                              byte (the quote before it is not the caller's
                              to pass on) */
  LLS_JSCAN_CAPTURE_END    /* the captured string ended: *pos is just past
                              its closing quote */
} lls_jscan_ev;

/* Takes n bytes of captured content; 0, or nonzero to stop the scan
 * (an LLS_JSCAN_ERROR with sink_failed set). */
typedef int (*lls_jscan_sink)(void *ud, const unsigned char *p, size_t n);

typedef struct lls_jscan {
  /* read by callers */
  int hold;           /* a string or bare token is open... */
  uint64_t tok_start; /* ...since this offset of the stream */
  int which;          /* LLS_JSCAN_KEYED_STRING: index in keys */
  uint64_t err_at;    /* LLS_JSCAN_ERROR: 0-based offset of the bad byte */
  const char *err;    /* ... and what is wrong (a static string) */
  int sink_failed;    /* ... the sink stopped it */
  /* set by callers */
  int watch_end;      /* report the end of the open token (then cleared) */
  /* the scanner's own */
  const char *const *keys; /* watched keys (NULL-terminated), or NULL */
  int st;                  /* lexical state (json_scan.c) */
  int str_key, colon_key;  /* watched key the last string / ':' stands for, or -1 */
  int quote_ok;            /* the KEYED_STRING at the current quote was reported */
  char kb[16];             /* first bytes of the string being read */
  size_t kn;               /* its length so far (saturates past sizeof kb) */
  int kesc;                /* it has escapes */
  unsigned cp, hi;         /* \u escape being read; a pending high surrogate */
  int hexleft;
  uint64_t esc_at, hi_at;  /* where that escape / the high surrogate began */
  int u8need;              /* continuation bytes a UTF-8 sequence still needs */
  unsigned char u8lo, u8hi; /* allowed range of the next one */
  lls_jscan_sink sink;     /* capture requested / running */
  void *ud;
  int cap, cap_unless;     /* in a capture; first byte that declines one */
} lls_jscan;

/* Starts a scan. keys: member keys whose string values may be captured
 * (reported as LLS_JSCAN_KEYED_STRING), NULL-terminated; NULL for none. */
void lls_jscan_init(lls_jscan *s, const char *const *keys);

/* Scans p[*pos..n) of a piece that starts at offset base of the stream,
 * up to the next event; *pos is where it stopped. Call again with the same
 * piece to go on until LLS_JSCAN_END, then with the next piece (*pos = 0). */
lls_jscan_ev lls_jscan_run(lls_jscan *s, const unsigned char *p, size_t n, uint64_t base,
                           size_t *pos);

/* After LLS_JSCAN_KEYED_STRING: capture that string's content into sink,
 * unless its first byte is `unless` (nonzero; then it is an ordinary
 * string). */
void lls_jscan_capture(lls_jscan *s, lls_jscan_sink sink, void *ud, int unless);

/* 1 while a capture runs (its content is not the caller's to pass on). */
int lls_jscan_capturing(const lls_jscan *s);

#endif
