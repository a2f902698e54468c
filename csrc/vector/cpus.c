/*
 * cpus.c -- the CPUs this process may use (see cpus.h). A container or
 * `taskset -c 0` leaves sysconf(_SC_NPROCESSORS_ONLN) at the machine's
 * count; threads beyond the CPUs really granted only queue up behind each
 * other (and, under a quota, get the whole cgroup throttled).
 */
#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT */
#include "vector/cpus.h"

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Reads the first line of path into buf; 0 on success. */
static int read_line(const char *path, char *buf, size_t cap) {
  FILE *f = fopen(path, "r");
  if (f == NULL) return -1;
  int ok = fgets(buf, (int)cap, f) != NULL;
  fclose(f);
  return ok ? 0 : -1;
}

/* ceil(quota / period) as a CPU count, or 0 for no limit (or bad input). */
static int quota_cpus(long long quota, long long period) {
  if (quota <= 0 || period <= 0) return 0;
  long long n = (quota + period - 1) / period;
  return n > 4096 ? 4096 : (int)n;
}

/* The limit set in one cgroup directory: v2's cpu.max ("max 100000" or
 * "QUOTA PERIOD"), else v1's cpu.cfs_quota_us ("-1" or QUOTA) with
 * cpu.cfs_period_us; 0 for none. */
static int dir_limit(const char *dir, int v2) {
  char path[4096], line[128];
  long long quota, period;
  if (v2) {
    if (snprintf(path, sizeof path, "%s/cpu.max", dir) >= (int)sizeof path) return 0;
    if (read_line(path, line, sizeof line) != 0) return 0;
    if (sscanf(line, "%lld %lld", &quota, &period) != 2) return 0; /* "max ..." */
    return quota_cpus(quota, period);
  }
  if (snprintf(path, sizeof path, "%s/cpu.cfs_quota_us", dir) >= (int)sizeof path) return 0;
  if (read_line(path, line, sizeof line) != 0 || sscanf(line, "%lld", &quota) != 1) return 0;
  if (snprintf(path, sizeof path, "%s/cpu.cfs_period_us", dir) >= (int)sizeof path) return 0;
  if (read_line(path, line, sizeof line) != 0 || sscanf(line, "%lld", &period) != 1) return 0;
  return quota_cpus(quota, period);
}

/* The smallest limit from root+cg up to root itself (a parent's quota
 * binds its children too); 0 for none. A path missing under root (a
 * container sees the host's path but has its own cgroup mounted at root)
 * is skipped, so root's own files still count. */
static int tree_limit(const char *root, const char *cg, int v2) {
  char dir[4096];
  size_t rlen = strlen(root);
  if (snprintf(dir, sizeof dir, "%s%s", root, cg) >= (int)sizeof dir) return 0;
  size_t len = strlen(dir);
  while (len > rlen && dir[len - 1] == '/') dir[--len] = '\0';
  int best = 0;
  for (;;) {
    int n = dir_limit(dir, v2);
    if (n > 0 && (best == 0 || n < best)) best = n;
    if (len <= rlen) break;
    while (len > rlen && dir[len - 1] != '/') len--; /* up one level */
    while (len > rlen && dir[len - 1] == '/') len--;
    dir[len] = '\0';
  }
  return best;
}

/* Whether the comma-separated controller list names "cpu". */
static int lists_cpu(const char *list, size_t n) {
  const char *end = list + n;
  while (list < end) {
    const char *comma = memchr(list, ',', (size_t)(end - list));
    size_t len = comma ? (size_t)(comma - list) : (size_t)(end - list);
    if (len == 3 && memcmp(list, "cpu", 3) == 0) return 1;
    list += len + 1;
  }
  return 0;
}

int hnsw_cgroup_cpu_limit(const char *proc_cgroup, const char *v2_root, const char *v1_root) {
  FILE *f = fopen(proc_cgroup, "r");
  if (f == NULL) return 0;
  char line[4096];
  int best = 0;
  while (fgets(line, sizeof line, f) != NULL) {
    line[strcspn(line, "\n")] = '\0';
    /* "ID:CONTROLLERS:PATH"; v2's line is "0::PATH" */
    char *c1 = strchr(line, ':');
    char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
    if (c2 == NULL || c2[1] != '/') continue;
    int n = 0;
    if (c2 == c1 + 1 && strncmp(line, "0:", 2) == 0) {
      if (v2_root != NULL) n = tree_limit(v2_root, c2 + 1, 1);
    } else if (v1_root != NULL && lists_cpu(c1 + 1, (size_t)(c2 - c1 - 1))) {
      n = tree_limit(v1_root, c2 + 1, 0);
    }
    if (n > 0 && (best == 0 || n < best)) best = n;
  }
  fclose(f);
  return best;
}

/* The CPUs in the affinity mask, else the online count. */
static int affinity_cpus(void) {
#ifdef __linux__
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
#endif
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n < 1 ? 1 : n > 4096 ? 4096 : (int)n;
}

int hnsw_usable_cpus(void) {
  int n = affinity_cpus();
  /* v1's cpu controller lies at cpu/ or at cpu,cpuacct/ (cpu/ is then
   * usually a symbolic link to it) */
  const char *v1 = access("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", F_OK) == 0
                       ? "/sys/fs/cgroup/cpu"
                       : "/sys/fs/cgroup/cpu,cpuacct";
  int limit = hnsw_cgroup_cpu_limit("/proc/self/cgroup", "/sys/fs/cgroup", v1);
  if (limit > 0 && limit < n) n = limit;
  return n < 1 ? 1 : n;
}
