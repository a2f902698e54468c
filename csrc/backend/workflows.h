/*
 * backend/workflows.h -- the workflow-state op table of the backend
 * contract (COMPONENTS.md "Workflow states", docs/workflows.md).
 *
 * A workflow is one row per (tenant, workflow_id): a name, a status, the
 * current step, data (JSON text) and four times. The status follows one
 * machine:
 *
 *   pending --> running --> completed | failed | cancelled
 *   pending --> failed | cancelled      (failed or cancelled before it ran)
 *
 * Setting the status a workflow has is no move and always allowed; every
 * other change is refused, so the three terminal statuses are final.
 * started_at is stamped by the first move to running, completed_at by the
 * move to a terminal status; neither is ever stamped again.
 *
 * The rule is enforced by the write statement itself (the LLS_WF_* SQL
 * below, shared by both backends): the row is changed only where its
 * stored status allows the move, in the same statement that stamps the
 * times, so two processes racing cannot both move a workflow out of a
 * terminal status, nor both stamp started_at.
 *
 * Conventions (as for every op table, see backend.h): return 0 on success,
 * -1 with *err filled; times are int64 microseconds; ids, names and
 * statuses are checked by the core (base/limits.h, the five statuses).
 */
#ifndef LLS_BACKEND_WORKFLOWS_H
#define LLS_BACKEND_WORKFLOWS_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "backend/backend.h"

/* One workflow's row. Strings point into the caller's buffer (or, for
 * dump's sink, into the backend's row) until it changes. */
typedef struct lls_workflow {
  lls_str tenant_id; /* filled by dump only */
  lls_str workflow_id, name, status;
  lls_str data; /* JSON text */
  int current_step;
  int has_started, has_completed; /* started_at / completed_at are set */
  int64_t started_at, completed_at, last_updated, created_at;
} lls_workflow;

/* What save writes. A string with ptr NULL (has_step 0) keeps the stored
 * value; a new row takes the defaults: name = the id, status "pending",
 * current_step 0, data {}. */
typedef struct lls_workflow_change {
  lls_str name, status, data;
  int has_step;
  int current_step;
} lls_workflow_change;

typedef enum lls_workflow_outcome {
  LLS_WF_SAVED,   /* written; *out is the row as it is now */
  LLS_WF_REFUSED, /* its status cannot move to the one asked: nothing
                     written, *out is the stored row */
  LLS_WF_MISSING  /* no such row and create was 0: nothing written */
} lls_workflow_outcome;

/* Receives one row of dump; 0, or -1 + err to stop. */
typedef int (*lls_workflow_sink)(void *ud, const lls_workflow *w, lls_error *err);

struct lls_workflow_ops {
  /* Changes workflow id as c says, in one statement, where the stored
   * status may move to c->status (always, when c->status.ptr is NULL);
   * with create, a missing row is made (c->status must then be a status
   * a pending workflow may move to, which the core ensures). Stamps
   * started_at / completed_at as the machine says and last_updated =
   * now. *out's strings are copied into mem (emptied first). */
  int (*save)(lls_backend *b, lls_str id, const lls_workflow_change *c, int create,
              int64_t now, lls_buf *mem, lls_workflow *out, lls_workflow_outcome *outcome,
              lls_error *err);

  /* Point read; *found = 0/1; *out's strings are copied into mem. */
  int (*load)(lls_backend *b, lls_str id, lls_buf *mem, lls_workflow *out, int *found,
              lls_error *err);

  /* Appends one row per workflow (key = its id) with status status (all
   * when status.ptr is NULL): last_updated newest first, then id. */
  int (*list)(lls_backend *b, lls_str status, lls_rows *out, lls_error *err);

  /* Deletes workflow id; *existed = 1 when there was one. */
  int (*del)(lls_backend *b, lls_str id, int *existed, lls_error *err);

  /* The tenant's number of workflows. */
  int (*count)(lls_backend *b, int64_t *n, lls_error *err);

  /* Sends up to limit rows with workflow_id > after (bytes; "" for the
   * first) to sink in workflow_id order, tenant_id filled in; *n counts
   * them. For export, page by page. */
  int (*dump)(lls_backend *b, lls_str after, size_t limit, lls_workflow_sink sink, void *ud,
              size_t *n, lls_error *err);

  /* Writes w exactly as given (import: times and status kept, no
   * machine). An existing row of the same id is replaced, kept
   * (*written = 0) or refused with LLS_ECONFLICT, as on_conflict says. */
  int (*put)(lls_backend *b, const lls_workflow *w, lls_conflict on_conflict, int *written,
             lls_error *err);
};

/* The statuses in the machine's order, for messages. */
#define LLS_WF_STATUS_LIST "pending, running, completed, failed, cancelled"
enum { LLS_WF_PENDING, LLS_WF_RUNNING, LLS_WF_COMPLETED, LLS_WF_FAILED, LLS_WF_CANCELLED };

/* s's LLS_WF_* index, or -1 when s is none of the five. */
static inline int lls_workflow_status(lls_str s) {
  static const char *const names[] = {"pending", "running", "completed", "failed", "cancelled"};
  for (int i = 0; i < 5; i++)
    if (strlen(names[i]) == s.len && memcmp(names[i], s.ptr, s.len) == 0) return i;
  return -1;
}

/* ----------------------------------------------- the machine, as SQL */

/* The backends' statements are built from these, with their own
 * placeholders: cur is the stored status, to the requested one (NULL:
 * unchanged), col a time column, now the time parameter. */
#define LLS_WF_TERMINAL "('completed', 'failed', 'cancelled')"

/* True where the stored status cur may move to `to`. */
#define LLS_WF_MOVE_OK(cur, to)                                              \
  "(" to " IS NULL OR " to " = " cur " OR (" cur " = 'pending' AND " to      \
  " IN ('running', 'failed', 'cancelled')) OR (" cur " = 'running' AND " to  \
  " IN " LLS_WF_TERMINAL "))"

/* started_at / completed_at after an allowed move from cur to `to`: set
 * when unset and the move enters running / a terminal status. */
#define LLS_WF_STAMP_STARTED(col, cur, to, now)                              \
  "CASE WHEN " col " IS NULL AND " to " = 'running' AND " cur " <> " to      \
  " THEN " now " ELSE " col " END"
#define LLS_WF_STAMP_COMPLETED(col, cur, to, now)                            \
  "CASE WHEN " col " IS NULL AND " to " IN " LLS_WF_TERMINAL " AND " cur     \
  " <> " to " THEN " now " ELSE " col " END"

/* Copies w's strings into mem (emptied first) and points w at the
 * copies, for a backend whose row memory dies with its statement. 0, or
 * -1 when out of memory. */
static inline int lls_workflow_keep(lls_workflow *w, lls_buf *mem) {
  lls_str *s[] = {&w->workflow_id, &w->name, &w->status, &w->data};
  size_t off[4];
  mem->len = 0;
  for (int i = 0; i < 4; i++) {
    off[i] = mem->len;
    if (lls_buf_append(mem, s[i]->ptr, s[i]->len) != 0) return -1;
  }
  for (int i = 0; i < 4; i++) s[i]->ptr = mem->len ? mem->data + off[i] : "";
  return 0;
}

#endif
