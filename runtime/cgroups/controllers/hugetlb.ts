import { RuntimeError } from '../../spec/errors.js';
import type { CgroupFs } from '../fs.js';
import { setFile } from './util.js';

/** A page size as the kernel names it in hugetlb file names ("2MB", "1GB", "64KB"). */
const PAGE_SIZE = /^\d+[KMG]B$/;

/**
 * hugepageLimits: v1 `hugetlb.<size>.limit_in_bytes`, v2 `hugetlb.<size>.max`. A page size the
 * kernel does not offer has no such file: an INVALID_RESOURCE error (runtime-spec: values that
 * cannot be mapped to a kernel interface are errors).
 */
export async function applyHugetlb(fs: CgroupFs, dir: string, limits: readonly { pageSize: string; limit: number }[], version: 1 | 2): Promise<void> {
  for (const l of limits) {
    if (!PAGE_SIZE.test(l.pageSize)) throw new RuntimeError('INVALID_RESOURCE', `invalid hugepage size ${JSON.stringify(l.pageSize)}`);
    const file = version === 1 ? `hugetlb.${l.pageSize}.limit_in_bytes` : `hugetlb.${l.pageSize}.max`;
    if (!(await fs.exists(`${dir}/${file}`))) throw new RuntimeError('INVALID_RESOURCE', `hugepage size ${l.pageSize} is not supported by this kernel (no ${file})`);
    await setFile(fs, dir, file, l.limit);
  }
}
