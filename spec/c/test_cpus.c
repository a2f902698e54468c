/*
 * test_cpus.c -- vector/cpus.c: the cgroup CPU quota read from a fake
 * cgroup tree (argv[1], an empty directory the spec made): v2 cpu.max and
 * v1 cpu.cfs_quota_us/cpu.cfs_period_us, the tightest of a cgroup and its
 * ancestors, "max" and -1 as no limit, a host path missing under a
 * container's root, malformed files; and hnsw_usable_cpus against the
 * affinity mask (argv[2]: the CPUs the spec let this process run on).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "check.h"
#include "vector/cpus.h"

static char g_root[2048];

/* Writes text to root/rel, creating its folders. */
static void put(const char *rel, const char *text) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", g_root, rel);
  for (char *p = path + strlen(g_root) + 1; *p; p++) {
    if (*p != '/') continue;
    *p = '\0';
    mkdir(path, 0755);
    *p = '/';
  }
  FILE *f = fopen(path, "w");
  CHECK(f != NULL, "cannot write %s", path);
  fputs(text, f);
  fclose(f);
}

static int limit(void) {
  char cg[4096], v2[4096], v1[4096];
  snprintf(cg, sizeof cg, "%s/proc-cgroup", g_root);
  snprintf(v2, sizeof v2, "%s/v2", g_root);
  snprintf(v1, sizeof v1, "%s/v1", g_root);
  return hnsw_cgroup_cpu_limit(cg, v2, v1);
}

static void test_v2(void) {
  put("proc-cgroup", "0::/app/worker\n");
  CHECK(limit() == 0, "no cpu.max files: no limit, got %d", limit());
  put("v2/app/worker/cpu.max", "max 100000\n");
  CHECK(limit() == 0, "max: no limit, got %d", limit());
  put("v2/app/worker/cpu.max", "100000 100000\n");
  CHECK(limit() == 1, "one CPU's quota: 1, got %d", limit());
  put("v2/app/worker/cpu.max", "150000 100000\n");
  CHECK(limit() == 2, "1.5 CPUs round up: 2, got %d", limit());
  put("v2/app/cpu.max", "50000 100000\n");
  CHECK(limit() == 1, "a parent's tighter quota binds: 1, got %d", limit());
  put("v2/app/cpu.max", "800000 100000\n");
  put("v2/app/worker/cpu.max", "300000 100000\n");
  CHECK(limit() == 3, "the child's tighter quota: 3, got %d", limit());
  put("v2/app/worker/cpu.max", "junk\n");
  CHECK(limit() == 8, "a malformed file is no limit, the parent's applies: got %d", limit());
  /* a container: the host's path is not under its own root */
  put("proc-cgroup", "0::/system.slice/docker-1234.scope\n");
  put("v2/cpu.max", "200000 100000\n");
  CHECK(limit() == 2, "the root's own quota counts: 2, got %d", limit());
  put("v2/cpu.max", "max 100000\n");
  put("v2/app/cpu.max", "max 100000\n");
  put("v2/app/worker/cpu.max", "max 100000\n");
  printf("cgroup v2 ok\n");
}

static void test_v1(void) {
  put("proc-cgroup", "12:pids:/x\n4:cpu,cpuacct:/job\n3:cpuset:/\n0::/\n");
  put("v1/job/cpu.cfs_quota_us", "-1\n");
  put("v1/job/cpu.cfs_period_us", "100000\n");
  CHECK(limit() == 0, "-1: no limit, got %d", limit());
  put("v1/job/cpu.cfs_quota_us", "250000\n");
  CHECK(limit() == 3, "2.5 CPUs: 3, got %d", limit());
  put("v1/job/cpu.cfs_period_us", "0\n");
  CHECK(limit() == 0, "period 0: no limit, got %d", limit());
  put("v1/job/cpu.cfs_period_us", "50000\n");
  put("v1/job/cpu.cfs_quota_us", "50000\n");
  CHECK(limit() == 1, "v1 quota 1 CPU: got %d", limit());
  /* "cpuacct" alone is not the cpu controller */
  put("proc-cgroup", "4:cpuacct:/job\n");
  CHECK(limit() == 0, "cpuacct alone: no limit, got %d", limit());
  /* both versions: the tighter wins */
  put("proc-cgroup", "4:cpu:/job\n0::/app\n");
  put("v2/app/cpu.max", "400000 100000\n");
  CHECK(limit() == 1, "v1 1 CPU, v2 4: 1, got %d", limit());
  printf("cgroup v1 ok\n");
}

static void test_edges(void) {
  char missing[4096];
  snprintf(missing, sizeof missing, "%s/none", g_root);
  CHECK(hnsw_cgroup_cpu_limit(missing, g_root, g_root) == 0, "no cgroup file: no limit");
  put("proc-cgroup", "garbage\n::\n0:\n1:cpu\n");
  CHECK(limit() == 0, "malformed lines are skipped: got %d", limit());
  CHECK(hnsw_cgroup_cpu_limit("/proc/self/cgroup", NULL, NULL) == 0, "no roots: no limit");
  printf("edges ok\n");
}

int main(int argc, char **argv) {
  CHECK(argc == 3, "usage: test_cpus DIR AFFINITY_CPUS");
  snprintf(g_root, sizeof g_root, "%s", argv[1]);
  mkdir(g_root, 0755);
  test_v2();
  test_v1();
  test_edges();
  int want = atoi(argv[2]);
  int got = hnsw_usable_cpus();
  CHECK(got >= 1 && got <= want, "usable CPUs %d, affinity mask allows %d", got, want);
  printf("usable cpus %d (affinity %d)\n", got, want);
  printf("ok: %d checks passed\n", g_checks);
  return 0;
}
