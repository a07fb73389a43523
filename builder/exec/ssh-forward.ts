/**
 * `RUN --mount=type=ssh`: a fresh unix socket per mount that forwards every connection to an
 * ssh-agent socket of the build host, as BuildKit's session proxies the client's agent. The
 * socket gets the mount's owner and mode (default 0:0, 0600) and lives in a private temp
 * directory that is bound into the RUN (never part of a layer) and removed afterwards.
 */
import { chmod, chown, mkdtemp, rm } from 'node:fs/promises';
import { connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A forwarding socket; `close` stops it, drops open connections and removes it. */
export interface AgentForward {
  readonly path: string;
  close(): Promise<void>;
}

/** Starts a socket forwarding to the agent at `agent`, owned by `uid:gid` with `mode`. */
export async function forwardAgent(agent: string, opts: { uid: number; gid: number; mode: number }): Promise<AgentForward> {
  const dir = await mkdtemp(join(tmpdir(), 'tsbuild-ssh-'));
  const path = join(dir, 'agent.sock');
  const open = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(agent);
    open.add(client);
    open.add(upstream);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      open.delete(client);
      open.delete(upstream);
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    client.pipe(upstream).pipe(client);
  });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => resolve());
    });
    await chown(path, opts.uid, opts.gid);
    await chmod(path, opts.mode);
  } catch (e) {
    server.close();
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
  let closed = false;
  return {
    path,
    close: async () => {
      if (closed) return;
      closed = true;
      for (const s of open) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
      await rm(dir, { recursive: true, force: true });
    },
  };
}
