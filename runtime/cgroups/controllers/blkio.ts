import type { LinuxBlockIO } from '../../spec/types.js';
import { RuntimeError } from '../../spec/errors.js';
import type { CgroupFs } from '../fs.js';
import type { CgroupStats } from '../types.js';
import { parseKeyValues, readOptional, setFile } from './util.js';

/** v1 blkio: blkio.weight (CFQ) or blkio.bfq.weight (BFQ), whichever the kernel offers, plus throttles. */
export async function applyBlkioV1(fs: CgroupFs, dir: string, b: LinuxBlockIO): Promise<void> {
  if (b.weight !== undefined) {
    const file = (await fs.exists(`${dir}/blkio.weight`)) ? 'blkio.weight' : (await fs.exists(`${dir}/blkio.bfq.weight`)) ? 'blkio.bfq.weight' : undefined;
    if (!file) throw new RuntimeError('CGROUP_UNSUPPORTED', `blkio weight is not supported by the kernel's io scheduler (no blkio.weight in ${dir})`, { step: 'cgroup' });
    await setFile(fs, dir, file, b.weight);
  }
  const throttles: [keyof LinuxBlockIO, string][] = [
    ['throttleReadBpsDevice', 'blkio.throttle.read_bps_device'],
    ['throttleWriteBpsDevice', 'blkio.throttle.write_bps_device'],
    ['throttleReadIOPSDevice', 'blkio.throttle.read_iops_device'],
    ['throttleWriteIOPSDevice', 'blkio.throttle.write_iops_device'],
  ];
  for (const [key, file] of throttles) {
    for (const d of (b[key] as { major: number; minor: number; rate: number }[] | undefined) ?? []) await setFile(fs, dir, file, `${d.major}:${d.minor} ${d.rate}`);
  }
}

/** v1 blkio weight 10..1000 → v2 io.weight 1..10000 (runc `convertBlkIOToIOWeightValue`). */
export function blkioToIoWeight(w: number): number {
  return Math.floor(1 + ((w - 10) * 9999) / 990);
}

/** v2 io: io.weight ("default N", or io.bfq.weight) and io.max throttles. */
export async function applyIoV2(fs: CgroupFs, dir: string, b: LinuxBlockIO): Promise<void> {
  if (b.weight !== undefined) {
    if (await fs.exists(`${dir}/io.bfq.weight`)) await setFile(fs, dir, 'io.bfq.weight', b.weight);
    else await setFile(fs, dir, 'io.weight', `default ${blkioToIoWeight(b.weight)}`);
  }
  const keys: [keyof LinuxBlockIO, string][] = [['throttleReadBpsDevice', 'rbps'], ['throttleWriteBpsDevice', 'wbps'], ['throttleReadIOPSDevice', 'riops'], ['throttleWriteIOPSDevice', 'wiops']];
  for (const [key, name] of keys) {
    for (const d of (b[key] as { major: number; minor: number; rate: number }[] | undefined) ?? []) await setFile(fs, dir, 'io.max', `${d.major}:${d.minor} ${name}=${d.rate}`);
  }
}

/** Bytes read/written: v1 blkio.throttle.io_service_bytes ("8:0 Read N" lines). */
export async function ioStatsV1(fs: CgroupFs, dir: string): Promise<NonNullable<CgroupStats['io']>> {
  const text = (await readOptional(fs, dir, 'blkio.throttle.io_service_bytes_recursive')) ?? (await readOptional(fs, dir, 'blkio.throttle.io_service_bytes')) ?? '';
  const out = { readBytes: 0, writeBytes: 0 };
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length !== 3) continue;
    if (f[1] === 'Read') out.readBytes += Number(f[2]);
    if (f[1] === 'Write') out.writeBytes += Number(f[2]);
  }
  return out;
}

/** Bytes read/written: v2 io.stat ("8:0 rbytes=N wbytes=N ..."). */
export async function ioStatsV2(fs: CgroupFs, dir: string): Promise<NonNullable<CgroupStats['io']>> {
  const out = { readBytes: 0, writeBytes: 0 };
  for (const line of ((await readOptional(fs, dir, 'io.stat')) ?? '').split('\n')) {
    const kv = parseKeyValues(line.split(/\s+/).slice(1).map((p) => p.replace('=', ' ')).join('\n'));
    out.readBytes += kv.get('rbytes') ?? 0;
    out.writeBytes += kv.get('wbytes') ?? 0;
  }
  return out;
}
