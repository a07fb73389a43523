import type { LinuxResources } from '../spec/types.js';

/** Which cgroup to manage. */
export interface CgroupConfig {
  /** Relative name, e.g. `tsbuild/<containerId>`; nested under the runtime's own cgroup (see README). */
  name: string;
  resources?: LinuxResources;
}

/** Freezer states of the runtime-spec / v1 freezer. */
export type FreezerState = 'FROZEN' | 'THAWED';

/** Usage figures; a section is absent when its controller is not available. */
export interface CgroupStats {
  memory?: { usage: number; maxUsage?: number; limit?: number; swapLimit?: number; failcnt?: number; oomKills?: number };
  cpu?: { usageNanos: number; quota?: number; period?: number; throttledPeriods?: number };
  pids?: { current: number; limit?: number };
  io?: { readBytes: number; writeBytes: number };
}

/**
 * One container's cgroup, on whichever hierarchy the host has (picked once by
 * `createCgroupManager`). Call order: create → apply → addProcess … → remove. `remove` kills
 * what is left and removes every directory `create` made; it is idempotent.
 */
export interface CgroupManager {
  readonly version: 1 | 2;
  /** controller → directory (`unified` → dir on v2). */
  paths(): Record<string, string>;
  create(): Promise<void>;
  apply(r: LinuxResources): Promise<void>;
  addProcess(pid: number): Promise<void>;
  pids(): Promise<number[]>;
  /** Freezes or thaws, resolving once the kernel reports the state reached. */
  freeze(state: FreezerState): Promise<void>;
  stats(): Promise<CgroupStats>;
  /** Sends `signal` to every process in the cgroup. */
  kill(signal: number): Promise<void>;
  remove(): Promise<void>;
}
