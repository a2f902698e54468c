/*
 * sections.c -- the list of component export sections (sections.h).
 */
#include "lua/sections.h"

#include <stdio.h>
#include <string.h>

#include "lua/agent_states_section.h"
#include "lua/artifacts_section.h"
#include "lua/events_section.h"
#include "lua/graph_section.h"
#include "lua/hook_history_section.h"
#include "lua/patterns_section.h"
#include "lua/sessions_section.h"
#include "lua/workflows_section.h"

/* In export order: sessions before the artifacts that refer to them. */
const lls_section_codec *const lls_section_codecs[] = {
    &lls_sessions_section,
    &lls_artifacts_section,
    &lls_agent_states_section,
    &lls_workflows_section,
    &lls_patterns_section,
    &lls_graph_section,
    &lls_hook_history_section,
    &lls_events_section,
    NULL,
};

const lls_section_codec *lls_section_find(const char *name, size_t len) {
  for (size_t i = 0; lls_section_codecs[i] != NULL; i++) {
    const char *n = lls_section_codecs[i]->name;
    if (strlen(n) == len && memcmp(n, name, len) == 0) return lls_section_codecs[i];
  }
  return NULL;
}

void lls_section_part_key(const lls_section_codec *c, int part, char *out, size_t cap) {
  const char *p = c->parts[part];
  size_t n = strlen(c->name);
  if (strcmp(p, c->name) == 0 || (n > 0 && c->name[n - 1] != 's'))
    snprintf(out, cap, "%s", p);
  else
    snprintf(out, cap, "%.*s_%s", (int)(n > 0 && c->name[n - 1] == 's' ? n - 1 : n), c->name, p);
}
