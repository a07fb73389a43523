import { constants, promises as fsp } from 'node:fs';

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

/** The real cgroupfs. Writes open with O_WRONLY|O_TRUNC and no O_CREAT, as the kernel expects. */
export const nodeCgroupFs: CgroupFs = {
  read: (p) => fsp.readFile(p, 'utf8'),
  async write(p, v) {
    const fh = await fsp.open(p, constants.O_WRONLY | constants.O_TRUNC);
    try {
      await fh.write(v);
    } finally {
      await fh.close();
    }
  },
  exists: (p) => fsp.access(p).then(() => true, () => false),
  mkdirp: (p) => fsp.mkdir(p, { recursive: true }),
  rmdir: (p) => fsp.rmdir(p),
  realpath: (p) => fsp.realpath(p),
  readdir: (p) => fsp.readdir(p),
};
