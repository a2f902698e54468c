/*
 * lua/graph_section.h -- the "knowledge_graph" export section
 * (graph_section.c) and the version count both it and db:graph() report.
 */
#ifndef LLS_LUA_GRAPH_SECTION_H
#define LLS_LUA_GRAPH_SECTION_H

#include <stdint.h>

#include "lua/sections.h"

/* The tenant's entity and relationship versions (the section's and the
 * object's count). */
int lls_graph_count(lls_backend *cb, int64_t now, int64_t *n, lls_error *err);

/* The "knowledge_graph" section. */
extern const lls_section_codec lls_graph_section;

#endif
