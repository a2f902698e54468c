/*
 * lua/events_section.h -- the "event_log" export section
 * (events_section.c) and the event count the binding shares with it.
 */
#ifndef LLS_LUA_EVENTS_SECTION_H
#define LLS_LUA_EVENTS_SECTION_H

#include <stdint.h>

#include "lua/sections.h"

/* The tenant's number of events (for __tostring and progress). */
int lls_events_count(lls_backend *cb, int64_t now, int64_t *n, lls_error *err);

extern const lls_section_codec lls_events_section;

#endif
