/*
 * lua/sessions_section.h -- the "sessions" export section and what the
 * Sessions binding shares with it (sessions_section.c).
 */
#ifndef LLS_LUA_SESSIONS_SECTION_H
#define LLS_LUA_SESSIONS_SECTION_H

#include <stdint.h>

#include "backend/backend.h"
#include "base/buf.h"
#include "lua/sections.h"

/* The statuses a session may have, for messages. */
#define LLS_SESSION_STATUSES "active, completed, expired, archived"

/* 1 when s is one of LLS_SESSION_STATUSES. */
int lls_sessions_status_ok(lls_str s);

/* The tenant's live sessions in cb (the section's count, and the Sessions
 * object's row count). */
int lls_sessions_count(lls_backend *cb, int64_t now, int64_t *n, lls_error *err);

/* The export section "sessions" (sections.c lists it). */
extern const lls_section_codec lls_sessions_section;

#endif
