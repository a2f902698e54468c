/*
 * lua/artifacts_section.h -- the "artifacts" export section
 * (artifacts_section.c), which sections.c lists.
 */
#ifndef LLS_LUA_ARTIFACTS_SECTION_H
#define LLS_LUA_ARTIFACTS_SECTION_H

#include "lua/sections.h"

/* {content = [...], artifacts = [...]} */
extern const lls_section_codec lls_artifacts_section;

#endif
