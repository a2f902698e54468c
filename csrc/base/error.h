/*
 * error.h -- the error a C layer reports: a documented code and a message.
 *
 * Nothing below csrc/lua/ raises Lua errors. A failing C function fills an
 * lls_error and returns -1; the Lua layer turns it into an error object
 * (lua/error.c) whose `code` is lls_code_name(code).
 */
#ifndef LLS_BASE_ERROR_H
#define LLS_BASE_ERROR_H

/* The documented error codes; lls_code_name gives the Lua-visible string. */
typedef enum lls_code {
  LLS_OK = 0,
  LLS_ECLOSED,     /* "closed": handle used after close */
  LLS_ENOTFOUND,   /* "not_found" */
  LLS_ECONFLICT,   /* "conflict": constraint / uniqueness violation */
  LLS_EBUSY,       /* "busy": lock timeout, serialisation failure */
  LLS_EIO,         /* "io": disk, corruption, anything unexpected */
  LLS_ECONNECTION, /* "connection": lost or refused server connection */
  LLS_EQUOTA,      /* "quota" */
  LLS_EFORMAT,     /* "format": malformed input data */
  LLS_EVERSION,    /* "version": unsupported format or schema version */
  LLS_EINVALID,    /* "invalid": a request the backend cannot honour */
  LLS_EINTEGRITY,  /* "integrity": stored data failed its checksum or check */
  LLS_EPERMISSION  /* "permission": the database refused the role or tenant */
} lls_code;

typedef struct lls_error {
  lls_code code;
  char message[512];
  char sqlstate[6];  /* PostgreSQL SQLSTATE, "" when not from PostgreSQL */
  int sqlite_code;   /* SQLite extended result code, 0 when not from SQLite */
} lls_error;

/* Fills *err (printf-style message) and returns -1, so callers can write
 * `return lls_error_set(err, LLS_EIO, "...")`. */
int lls_error_set(lls_error *err, lls_code code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* lls_error_set(err, LLS_EIO, "out of memory"): the one spelling of it. */
int lls_error_oom(lls_error *err);

/* For a producer whose consumer (a sink callback) asked it to stop: keeps
 * the error the consumer filled in, else fills LLS_EIO "the consumer
 * stopped the stream". Returns -1. */
int lls_error_stopped(lls_error *err);

/* The Lua-visible name of a code ("not_found", ...). */
const char *lls_code_name(lls_code code);

#endif
