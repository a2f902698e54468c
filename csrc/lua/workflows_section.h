/*
 * lua/workflows_section.h -- the "workflow_states" export section
 * (workflows_section.c) and the workflow count both it and db:workflows()
 * report.
 */
#ifndef LLS_LUA_WORKFLOWS_SECTION_H
#define LLS_LUA_WORKFLOWS_SECTION_H

#include <stdint.h>

#include "lua/sections.h"

/* The tenant's number of workflows (the section's and the object's count). */
int lls_workflows_count(lls_backend *cb, int64_t now, int64_t *n, lls_error *err);

/* The "workflow_states" section. */
extern const lls_section_codec lls_workflows_section;

#endif
