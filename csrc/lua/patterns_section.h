/*
 * lua/patterns_section.h -- the "procedural_memory" export section
 * (patterns_section.c) and the pattern count both it and db:patterns()
 * report.
 */
#ifndef LLS_LUA_PATTERNS_SECTION_H
#define LLS_LUA_PATTERNS_SECTION_H

#include <stdint.h>

#include "lua/sections.h"

/* The tenant's number of patterns (the section's and the object's count). */
int lls_patterns_count(lls_backend *cb, int64_t now, int64_t *n, lls_error *err);

/* The "procedural_memory" section. */
extern const lls_section_codec lls_patterns_section;

#endif
