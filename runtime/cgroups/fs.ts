import { closeSync, constants, existsSync, mkdirSync, openSync, readdirSync, readFileSync, realpathSync, rmdirSync, writeSync } from 'node:fs';

/**
 * The file operations a cgroup manager performs. Every kernel side effect of the cgroup code
 * goes through this interface, so planning logic is tested on a temp-dir tree (youki's
 * `set_fixture`) with a fake that emulates the kernel populating new directories.
 */
export interface CgroupFs {
  /** Reads a control file; rejects with the errno error (ENOENT when absent). */
  read(path: string): Promise<string>;
  /** Writes a control file that must already exist (never creates one). */
  write(path: string, value: string): Promise<void>;
  exists(path: string): Promise<boolean>;
  /** mkdir -p; resolves to the top-most directory created, or undefined. */
  mkdirp(path: string): Promise<string | undefined>;
  /** Removes one empty cgroup directory (rmdir). */
  rmdir(path: string): Promise<void>;
  realpath(path: string): Promise<string>;
  readdir(path: string): Promise<string[]>;
}

/**
 * The real cgroupfs. Writes open with O_WRONLY|O_TRUNC and no O_CREAT, as the kernel expects.
 * The calls are synchronous under the promise interface: a cgroupfs operation is an in-kernel
 * update of a few microseconds, far less than a round trip through libuv's thread pool (which
 * dominated container start-up with a dozen v1 hierarchies). Errors still arrive as rejections.
 */
export const nodeCgroupFs: CgroupFs = {
  read: async (p) => readFileSync(p, 'utf8'),
  async write(p, v) {
    const fd = openSync(p, constants.O_WRONLY | constants.O_TRUNC);
    try {
      writeSync(fd, v);
    } finally {
      closeSync(fd);
    }
  },
  exists: async (p) => existsSync(p),
  mkdirp: async (p) => mkdirSync(p, { recursive: true }),
  rmdir: async (p) => rmdirSync(p),
  realpath: async (p) => realpathSync(p),
  readdir: async (p) => readdirSync(p),
};
