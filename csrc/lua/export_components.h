/*
 * export_components.h -- the components' sections of an export document
 * (sessions, artifacts, agent_state, workflow_states, ...), written
 * through their codecs (lua/sections.h).
 */
#ifndef LLS_LUA_EXPORT_COMPONENTS_H
#define LLS_LUA_EXPORT_COMPONENTS_H

#include "lua/export_job.h"

/* Writes every codec's section, in the codecs' order. Raises on failure
 * (the run cleans up). */
void lls_export_components(lua_State *L, lls_xjob *j, lls_handle *h);

/* The records the components' sections will hold, for progress. */
int64_t lls_export_count_components(lua_State *L, const lls_xjob *j, lls_handle *h);

#endif
