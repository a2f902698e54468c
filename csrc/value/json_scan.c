/*
 * json_scan.c -- the lexical pass beside yajl (json_scan.h): a byte state
 * machine over JSON text that survives any split into pieces.
 *
 * States: outside strings (S_OUT), in a bare token (S_BARE: a number or
 * literal), in a string (S_STR) and in its escapes (S_ESC, S_HEX, and
 * S_PAIR_BS / S_PAIR_U waiting for the low half of a surrogate pair), and
 * S_CAP_FIRST: a capture was asked for and the first content byte decides
 * it. A capture is a flag over the string states: content goes to the
 * sink (escapes decoded, UTF-8 checked) instead of being left in the text.
 *
 * Each state has a function that takes one byte or a run of them and
 * returns GO_ON or the event to stop at.
 */
#include <string.h>

#include "value/json_scan.h"

enum { S_OUT, S_BARE, S_STR, S_ESC, S_HEX, S_PAIR_BS, S_PAIR_U, S_CAP_FIRST };

#define GO_ON (-1)

static const char SURROGATE[] = "unpaired UTF-16 surrogate in \\u escape";

void lls_jscan_init(lls_jscan *s, const char *const *keys) {
  memset(s, 0, sizeof *s);
  s->keys = keys;
  s->str_key = s->colon_key = -1;
  s->u8lo = 0x80;
  s->u8hi = 0xBF;
}

void lls_jscan_capture(lls_jscan *s, lls_jscan_sink sink, void *ud, int unless) {
  s->sink = sink;
  s->ud = ud;
  s->cap_unless = unless;
}

int lls_jscan_capturing(const lls_jscan *s) { return s->cap; }

static int fail(lls_jscan *s, uint64_t at, const char *what) {
  s->err_at = at;
  s->err = what;
  return LLS_JSCAN_ERROR;
}

/* Hands captured bytes to the sink. GO_ON, or the error when it stops. */
static int to_sink(lls_jscan *s, const unsigned char *p, size_t n, uint64_t at) {
  if (s->sink(s->ud, p, n) == 0) return GO_ON;
  s->sink_failed = 1;
  return fail(s, at, "out of memory");
}

/* Keeps the first bytes of a string: it may be a watched key. */
static void keep_key(lls_jscan *s, const unsigned char *p, size_t n) {
  if (s->keys == NULL) return;
  if (s->kn < sizeof s->kb) {
    size_t take = n < sizeof s->kb - s->kn ? n : sizeof s->kb - s->kn;
    memcpy(s->kb + s->kn, p, take);
  }
  s->kn = n > sizeof s->kb - s->kn ? sizeof s->kb : s->kn + n; /* saturates: too long */
}

/* The watched key the string just read spells, or -1. */
static int key_index(const lls_jscan *s) {
  if (s->keys == NULL || s->kesc || s->kn >= sizeof s->kb) return -1;
  for (int k = 0; s->keys[k] != NULL; k++)
    if (strlen(s->keys[k]) == s->kn && memcmp(s->keys[k], s->kb, s->kn) == 0) return k;
  return -1;
}

static int open_string(lls_jscan *s, uint64_t base, size_t *i) {
  if (s->colon_key >= 0 && !s->quote_ok) { /* the caller decides, then resumes here */
    s->quote_ok = 1;
    s->which = s->colon_key;
    return LLS_JSCAN_KEYED_STRING;
  }
  s->quote_ok = 0;
  s->colon_key = s->str_key = -1;
  s->hold = 1;
  s->tok_start = base + *i;
  s->kn = 0;
  s->kesc = 0;
  s->st = s->sink != NULL ? S_CAP_FIRST : S_STR;
  (*i)++;
  return GO_ON;
}

static int out_byte(lls_jscan *s, const unsigned char *p, uint64_t base, size_t *i) {
  switch (p[*i]) {
  case ' ': case '\t': case '\n': case '\r': break;
  case '\f':
    return fail(s, base + *i, "a form feed outside a string (JSON whitespace is space, tab, "
                "LF and CR)");
  case '\v':
    return fail(s, base + *i, "a vertical tab outside a string (JSON whitespace is space, "
                "tab, LF and CR)");
  case ':':
    s->colon_key = s->str_key;
    s->str_key = -1;
    break;
  case '{': case '}': case '[': case ']': case ',':
    s->colon_key = s->str_key = -1;
    break;
  case '"': return open_string(s, base, i);
  default: /* a number or literal; yajl judges its spelling */
    s->colon_key = s->str_key = -1;
    s->hold = 1;
    s->tok_start = base + *i;
    s->st = S_BARE;
  }
  (*i)++;
  return GO_ON;
}

static int ends_bare(unsigned char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v' ||
         c == ',' || c == ':' || c == '{' || c == '}' || c == '[' || c == ']' || c == '"';
}

static int bare_bytes(lls_jscan *s, const unsigned char *p, size_t n, size_t *i) {
  size_t k = *i;
  while (k < n && !ends_bare(p[k])) k++;
  *i = k;
  if (k == n) return GO_ON;
  s->hold = 0; /* the byte that ends it is read outside */
  s->st = S_OUT;
  if (s->watch_end) {
    s->watch_end = 0;
    return LLS_JSCAN_TOKEN_END;
  }
  return GO_ON;
}

static int close_string(lls_jscan *s, size_t *i) {
  (*i)++;
  s->st = S_OUT;
  s->sink = NULL;
  if (s->cap) {
    s->cap = 0;
    s->str_key = -1;
    return LLS_JSCAN_CAPTURE_END;
  }
  s->hold = 0;
  s->str_key = key_index(s);
  if (s->watch_end) {
    s->watch_end = 0;
    return LLS_JSCAN_TOKEN_END;
  }
  return GO_ON;
}

/* One byte of a multi-byte UTF-8 sequence (RFC 3629: no overlongs, no
 * surrogates, nothing past U+10FFFF). */
static int utf8_byte(lls_jscan *s, const unsigned char *p, uint64_t base, size_t *i) {
  unsigned char c = p[*i];
  if (s->u8need > 0) {
    if (c < s->u8lo || c > s->u8hi) return fail(s, base + *i, "invalid UTF-8 in a string");
    s->u8lo = 0x80;
    s->u8hi = 0xBF;
    s->u8need--;
  } else if (c >= 0xC2 && c <= 0xDF) {
    s->u8need = 1;
  } else if (c >= 0xE0 && c <= 0xEF) {
    s->u8need = 2;
    if (c == 0xE0) s->u8lo = 0xA0;      /* overlong */
    else if (c == 0xED) s->u8hi = 0x9F; /* surrogates */
  } else if (c >= 0xF0 && c <= 0xF4) {
    s->u8need = 3;
    if (c == 0xF0) s->u8lo = 0x90;      /* overlong */
    else if (c == 0xF4) s->u8hi = 0x8F; /* past U+10FFFF */
  } else {
    return fail(s, base + *i, "invalid UTF-8 in a string");
  }
  (*i)++;
  if (s->cap) return to_sink(s, &c, 1, base + *i - 1);
  keep_key(s, &c, 1);
  return GO_ON;
}

/* String content: a run of plain ASCII at once, then one special byte. */
static int str_bytes(lls_jscan *s, const unsigned char *p, size_t n, uint64_t base, size_t *i) {
  size_t a = *i, k = a;
  if (s->u8need == 0) {
    while (k < n && p[k] >= 0x20 && p[k] < 0x80 && p[k] != '"' && p[k] != '\\') k++;
    *i = k;
    if (k > a) {
      if (s->cap) {
        int ev = to_sink(s, p + a, k - a, base + a);
        if (ev != GO_ON) return ev;
      } else {
        keep_key(s, p + a, k - a);
      }
    }
    if (k == n) return GO_ON;
  }
  unsigned char c = p[k];
  if (s->u8need > 0 || c >= 0x80) return utf8_byte(s, p, base, i);
  if (c == '"') return close_string(s, i);
  if (c == '\\') {
    s->st = S_ESC;
    s->esc_at = base + k;
    s->kesc = 1;
    (*i)++;
    return GO_ON;
  }
  return fail(s, base + k, "a control character inside a string (it must be escaped)");
}

/* A captured string's escape, as the UTF-8 bytes it stands for. */
static int emit(lls_jscan *s, unsigned cp, uint64_t at) {
  unsigned char u[4];
  size_t n;
  if (cp < 0x80) {
    u[0] = (unsigned char)cp, n = 1;
  } else if (cp < 0x800) {
    u[0] = (unsigned char)(0xC0 | cp >> 6), u[1] = (unsigned char)(0x80 | (cp & 63)), n = 2;
  } else if (cp < 0x10000) {
    u[0] = (unsigned char)(0xE0 | cp >> 12), u[1] = (unsigned char)(0x80 | (cp >> 6 & 63));
    u[2] = (unsigned char)(0x80 | (cp & 63)), n = 3;
  } else {
    u[0] = (unsigned char)(0xF0 | cp >> 18), u[1] = (unsigned char)(0x80 | (cp >> 12 & 63));
    u[2] = (unsigned char)(0x80 | (cp >> 6 & 63)), u[3] = (unsigned char)(0x80 | (cp & 63));
    n = 4;
  }
  return s->cap ? to_sink(s, u, n, at) : GO_ON;
}

static int esc_byte(lls_jscan *s, const unsigned char *p, uint64_t base, size_t *i) {
  static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
  unsigned char c = p[*i];
  if (c == 'u') {
    s->st = S_HEX;
    s->hexleft = 4;
    s->cp = 0;
    (*i)++;
    return GO_ON;
  }
  const char *at = c != '\0' ? strchr(from, c) : NULL;
  if (at == NULL) return fail(s, base + *i, "an invalid escape in a string");
  s->st = S_STR;
  (*i)++;
  return emit(s, (unsigned char)to[at - from], s->esc_at);
}

static int hexval(unsigned char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* A digit of \uXXXX; after the fourth, the code point (or half of one). */
static int hex_byte(lls_jscan *s, const unsigned char *p, uint64_t base, size_t *i) {
  int v = hexval(p[*i]);
  if (v < 0) return fail(s, base + *i, "\\u must be followed by four hex digits");
  (*i)++;
  s->cp = s->cp * 16 + (unsigned)v;
  if (--s->hexleft > 0) return GO_ON;
  unsigned cp = s->cp;
  if (s->hi != 0) {
    if (cp < 0xDC00 || cp > 0xDFFF) return fail(s, s->hi_at, SURROGATE);
    cp = 0x10000 + ((s->hi - 0xD800) << 10) + (cp - 0xDC00);
    s->hi = 0;
  } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
    return fail(s, s->esc_at, SURROGATE);
  } else if (cp >= 0xD800 && cp <= 0xDBFF) {
    s->hi = cp;
    s->hi_at = s->esc_at;
    s->st = S_PAIR_BS;
    return GO_ON;
  }
  s->st = S_STR;
  return emit(s, cp, s->esc_at);
}

/* After a high surrogate: "\u" must follow. */
static int pair_byte(lls_jscan *s, const unsigned char *p, uint64_t base, size_t *i) {
  if (s->st == S_PAIR_BS) {
    if (p[*i] != '\\') return fail(s, s->hi_at, SURROGATE);
    s->esc_at = base + *i;
    s->st = S_PAIR_U;
  } else {
    if (p[*i] != 'u') return fail(s, s->hi_at, SURROGATE);
    s->st = S_HEX;
    s->hexleft = 4;
    s->cp = 0;
  }
  (*i)++;
  return GO_ON;
}

/* The first content byte of a string whose capture was asked for. */
static int cap_first(lls_jscan *s, const unsigned char *p, size_t i) {
  s->st = S_STR;
  if (s->cap_unless != 0 && p[i] == s->cap_unless) { /* declined: an ordinary string */
    s->sink = NULL;
    return GO_ON;
  }
  s->cap = 1;
  s->hold = 0; /* the quote is not the caller's to pass on */
  return LLS_JSCAN_CAPTURE_START;
}

lls_jscan_ev lls_jscan_run(lls_jscan *s, const unsigned char *p, size_t n, uint64_t base,
                           size_t *pos) {
  size_t i = *pos;
  int ev = GO_ON;
  while (ev == GO_ON && i < n) {
    switch (s->st) {
    case S_OUT: ev = out_byte(s, p, base, &i); break;
    case S_BARE: ev = bare_bytes(s, p, n, &i); break;
    case S_STR: ev = str_bytes(s, p, n, base, &i); break;
    case S_ESC: ev = esc_byte(s, p, base, &i); break;
    case S_HEX: ev = hex_byte(s, p, base, &i); break;
    case S_PAIR_BS:
    case S_PAIR_U: ev = pair_byte(s, p, base, &i); break;
    case S_CAP_FIRST: ev = cap_first(s, p, i); break;
    }
  }
  *pos = i;
  return ev == GO_ON ? LLS_JSCAN_END : (lls_jscan_ev)ev;
}
