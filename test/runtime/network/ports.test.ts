import { createServer, type Server } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { allocateHostPorts, describeHostPort } from '../../../runtime/network/ports.js';

function listen(): Promise<{ server: Server; port: number }> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve({ server, port: (server.address() as { port: number }).port }));
  });
}

describe('network/ports', () => {
  const servers: Server[] = [];
  afterAll(async () => {
    for (const s of servers) await new Promise((r) => s.close(r));
  });

  it('hostPort 0 gets distinct ephemeral ports; fixed free ports are kept as asked', async () => {
    const got = await allocateHostPorts([
      { hostPort: 0, containerPort: 80, protocol: 'tcp' },
      { hostPort: 0, containerPort: 81, protocol: 'tcp' },
      { hostPort: 0, containerPort: 53, protocol: 'udp' },
    ], new Map());
    expect(got.map((p) => p.containerPort)).toEqual([80, 81, 53]);
    for (const p of got) expect(p.hostPort).toBeGreaterThan(1024);
    expect(new Set(got.map((p) => `${p.hostPort}/${p.protocol}`)).size).toBe(3);
    const fixed = await allocateHostPorts([{ hostPort: got[0]!.hostPort, containerPort: 80, protocol: 'tcp', hostIP: '127.0.0.1' }], new Map());
    expect(fixed).toEqual([{ hostPort: got[0]!.hostPort, containerPort: 80, protocol: 'tcp', hostIP: '127.0.0.1' }]);
  });

  it('a port a host process listens on, or another container publishes, is a SETUP_FAILED naming it', async () => {
    const { server, port } = await listen();
    servers.push(server);
    await expect(allocateHostPorts([{ hostPort: port, containerPort: 80, protocol: 'tcp' }], new Map())).rejects.toMatchObject({
      code: 'SETUP_FAILED', errno: 'EADDRINUSE',
      message: `cannot publish port 80/tcp on host port ${port}/tcp: the port is already in use (a host process listens on it)`,
    });
    await expect(allocateHostPorts([{ hostPort: 40999, containerPort: 80, protocol: 'udp' }], new Map([['40999/udp', 'abcdef012345']]))).rejects.toThrow('it is published by container abcdef012345');
    const [free] = await allocateHostPorts([{ hostPort: 0, containerPort: 80, protocol: 'tcp' }], new Map());
    await expect(allocateHostPorts([
      { hostPort: free!.hostPort, containerPort: 80, protocol: 'tcp' },
      { hostPort: free!.hostPort, containerPort: 81, protocol: 'tcp' },
    ], new Map())).rejects.toThrow('published twice by this container');
    expect(describeHostPort({ hostIP: '0.0.0.0', hostPort: 1, protocol: 'udp' })).toBe('1/udp');
  });
});
