/**
 * `rmi` refuses an image a container (running or stopped, not removed) was created from, as
 * docker does, unless forced; after `rm` the image goes.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { busyboxRootfs } from '../../helpers/base-images.js';
import { firstReason, needBuiltCli, needOverlay, needRoot } from '../../helpers/capabilities.js';
import { runTsbuild, tsbuildOk } from '../../helpers/tools.js';

const why = firstReason(needRoot(), needOverlay(), needBuiltCli());
if (why) console.warn(`skip: ${why}`);
const root = mkdtempSync(join(tmpdir(), 'tsbuild-rmi-use-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe.skipIf(!!why)('rmi of an image in use', () => {
  it('is refused while a stopped container uses it, allowed with -f or after rm', async () => {
    await tsbuildOk(['import', await busyboxRootfs(), 'localhost/rmi/bb:1', '-c', 'CMD ["sh"]'], { root });
    await tsbuildOk(['tag', 'localhost/rmi/bb:1', 'localhost/rmi/bb:2'], { root });
    await tsbuildOk(['run', '--name', 'user-of-bb', 'localhost/rmi/bb:1', 'true'], { root });
    // untagging one of two names is fine: the image stays
    await tsbuildOk(['rmi', 'localhost/rmi/bb:2'], { root });
    const refused = await runTsbuild(['rmi', 'localhost/rmi/bb:1'], { root });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/unable to delete localhost\/rmi\/bb:1 \(must be forced\): image is being used by container [0-9a-f]{12}/);
    await tsbuildOk(['inspect', 'localhost/rmi/bb:1'], { root });
    await tsbuildOk(['rm', 'user-of-bb'], { root });
    const ok = await tsbuildOk(['rmi', 'localhost/rmi/bb:1'], { root });
    expect(ok.stdout).toContain('Deleted: sha256:');
    // forced: removed although a container uses it
    await tsbuildOk(['import', await busyboxRootfs(), 'localhost/rmi/bb:3'], { root });
    await tsbuildOk(['run', '--name', 'user-of-bb3', 'localhost/rmi/bb:3', 'true'], { root });
    await tsbuildOk(['rmi', '-f', 'localhost/rmi/bb:3'], { root });
    await tsbuildOk(['rm', 'user-of-bb3'], { root });
  }, 120_000);
});
