/*
 * cpus.h -- how many CPUs this process may really use, for default thread
 * counts (index builds, batched searches): the scheduler's affinity mask
 * (taskset, cpusets) capped by a cgroup CPU quota (cgroup v2 cpu.max,
 * v1 cpu.cfs_quota_us / cpu.cfs_period_us: containers, systemd units),
 * not the machine's online count.
 */
#ifndef LLS_VECTOR_CPUS_H
#define LLS_VECTOR_CPUS_H

/* The CPUs this process may use: at least 1. Reads the affinity mask and
 * /proc/self/cgroup with the cgroup files under /sys/fs/cgroup on every
 * call (no cached state: both can change while the process runs). */
int hnsw_usable_cpus(void);

/* The CPU limit the cgroup quotas set for the process whose cgroup file
 * (/proc/self/cgroup's format) is `proc_cgroup`, with cgroup v2 mounted at
 * `v2_root` and v1's cpu controller at `v1_root` (either may be NULL):
 * the smallest ceil(quota / period) over the process's cgroup and its
 * ancestors, or 0 when no quota applies (or nothing can be read). The
 * roots are parameters so tests can use a fake tree. */
int hnsw_cgroup_cpu_limit(const char *proc_cgroup, const char *v2_root, const char *v1_root);

#endif
