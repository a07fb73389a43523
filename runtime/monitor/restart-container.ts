/**
 * `restart` of a recorded container: a running one (or one waiting out its restart backoff) is
 * stopped and started again by its monitor, in the same container: id, name, rootfs, network,
 * volumes and log are kept, the process (and its pid) is new. An exited one is started again
 * (start-container.ts).
 */
import { containerInfo, recordPaths } from '../container/records.js';
import { RuntimeError } from '../errors.js';
import { requestMonitor } from './control.js';

/** Restarts container `id`; resolves once its new process runs, with that process's pid. */
export async function restartContainer(root: string, id: string, opts: { timeoutSec?: number } = {}): Promise<{ pid?: number }> {
  const i = await containerInfo(root, id);
  if (!i) throw new RuntimeError('CONTAINER_NOT_FOUND', `no such container: ${id}`);
  const st = i.status.status;
  // an exited (or created) container is started again, as docker restart does
  if (st === 'exited' || st === 'created') {
    const { startContainer } = await import('./start-container.js');
    await startContainer(root, id);
    const after = await containerInfo(root, id);
    return after?.status.pid !== undefined ? { pid: after.status.pid } : {};
  }
  const answer = await requestMonitor(recordPaths(root, id).dir, { op: 'restart', timeout: opts.timeoutSec ?? 10 });
  if (answer.ok !== true) throw new RuntimeError('INVALID_STATE', `restarting container ${i.record.name}: ${typeof answer.message === 'string' ? answer.message : 'the monitor refused'}`);
  return typeof answer.pid === 'number' ? { pid: answer.pid } : {};
}
